import type { Config, Mode, WorkerSpec } from "../config/mod.ts";
import { type Logger, silentLogger } from "../log/mod.ts";
import type { RouteTable } from "../routes/mod.ts";
import { Instance, type SpawnFn } from "./instance.ts";
import { PortPool } from "./port_pool.ts";
import { HealthMonitor } from "./_health_monitor.ts";
import {
  type RestartReason,
  WorkerEntry,
  type WorkerStatusJson,
} from "./worker.ts";
import { baseEnv, errorMessage, fileExists, workerEnv } from "./_env.ts";

/** Options for {@linkcode Supervisor}. */
export interface SupervisorOptions {
  /** Server mode, passed to workers as `TQ_MODE`. */
  mode: Mode;
  /** The route table the supervisor keeps in step with its healthy instances. */
  table: RouteTable;
  /** Logger. Default: silent. */
  logger?: Logger;
  /** Process spawner. Default: `Deno.Command`. */
  spawn?: SpawnFn;
  /** fetch for health probes. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Base environment of every worker. Default: this process's environment. */
  env?: Record<string, string>;
  /** Port pool. Default: one over the config's `port_range_start`–`port_range_end`. */
  pool?: PortPool;
  /**
   * How often live instances are health-probed; after
   * three failures in a row the worker is replaced
   * (`health-failed`). Default 5000; 0 disables.
   */
  healthIntervalMs?: number;
}

const MAX_BACKOFF_MS = 30_000;
const STABLE_MS = 10_000;

/**
 * Starts, replaces and stops worker processes; the only writer of the route
 * table. Every restart goes through {@linkcode Supervisor.replace}: start new
 * instances on fresh ports, wait for health, switch, drain and stop the old ones.
 *
 * @example
 * ```ts
 * const supervisor = new Supervisor(config, { mode: "prod", table, logger });
 * await supervisor.start(specs);
 * await supervisor.replace("index", "manual");
 * await supervisor.shutdown();
 * ```
 */
export class Supervisor {
  #config: Config;
  #mode: Mode;
  #table: RouteTable;
  #log: Logger;
  #spawn: SpawnFn | undefined;
  #fetch: typeof fetch | undefined;
  #env: Record<string, string>;
  #pool: PortPool;
  #workers = new Map<string, WorkerEntry>();
  #retiring = new Set<Promise<void>>();
  #closed = false;
  #monitor: HealthMonitor;

  constructor(config: Config, options: SupervisorOptions) {
    const {
      mode,
      table,
      logger = silentLogger,
      spawn,
      fetch: fetchFn,
      env = baseEnv(),
      pool,
      healthIntervalMs = 5000,
    } = options;
    this.#config = config;
    this.#mode = mode;
    this.#table = table;
    this.#log = logger;
    this.#monitor = new HealthMonitor(this.#workers, {
      intervalMs: healthIntervalMs,
      logger: logger,
      onUnhealthy: (entry) => this.#enqueue(entry, "health-failed"),
    });
    this.#spawn = spawn;
    this.#fetch = fetchFn;
    this.#env = env;
    this.#pool = pool ??
      new PortPool(
        config.workers.port_range_start,
        config.workers.port_range_end,
      );
  }

  /** The workers known to the supervisor, by name. */
  get workers(): ReadonlyMap<string, WorkerEntry> {
    return this.#workers;
  }

  /** Status of every worker, sorted by name. */
  status(): WorkerStatusJson[] {
    return [...this.#workers.values()].map((w) => w.toJSON()).sort((a, b) =>
      a.name.localeCompare(b.name)
    );
  }

  /** Replaces the config used for timings and new workers (worker settings come from their specs). */
  setConfig(config: Config): void {
    this.#config = config;
  }

  /** Starts every worker at once; resolves when each is healthy or has failed. */
  async start(specs: WorkerSpec[]): Promise<void> {
    await Promise.all(specs.map((spec) => this.add(spec)));
  }

  /** Adds a worker and starts it; resolves true when it serves. */
  add(spec: WorkerSpec): Promise<boolean> {
    if (this.#workers.has(spec.name)) {
      throw new TypeError(`Worker "${spec.name}" already exists`);
    }
    const entry = new WorkerEntry(spec, this.#log, (w) => {
      this.replace(w.name, "max-requests").catch((err) =>
        this.#log.error("replace failed", { worker: w.name, error: err })
      );
    });
    this.#workers.set(spec.name, entry);
    this.#table.put(entry);
    this.#monitor.start();
    return this.#enqueue(entry, "start");
  }

  /**
   * Applies a new spec to a known worker. A changed route or settings replaces
   * it (`config-changed`); `reason` forces a replace with that reason.
   */
  async update(
    spec: WorkerSpec,
    reason?: RestartReason,
  ): Promise<"unchanged" | "replaced" | "failed"> {
    const entry = this.#workers.get(spec.name);
    if (!entry) throw new TypeError(`Unknown worker "${spec.name}"`);
    const changed = JSON.stringify([
      entry.spec.route,
      entry.spec.settings,
      entry.spec.kind,
      entry.spec.binPath,
    ]) !==
      JSON.stringify([spec.route, spec.settings, spec.kind, spec.binPath]);
    entry.spec = spec;
    if (!changed && !reason) return "unchanged";
    this.#table.put(entry);
    return await this.replace(spec.name, reason ?? "config-changed")
      ? "replaced"
      : "failed";
  }

  /**
   * Replaces a worker's instances (SPEC §5). Requests made while a replace runs
   * coalesce into one more run after it.
   *
   * @returns true when new instances serve; false when the old ones were kept.
   * @throws {TypeError} When the worker is unknown.
   */
  replace(name: string, reason: RestartReason): Promise<boolean> {
    const entry = this.#workers.get(name);
    if (!entry) throw new TypeError(`Unknown worker "${name}"`);
    return this.#enqueue(entry, reason);
  }

  /**
   * Handles a `private/` change: sends the worker's announced reload signal to
   * each instance, or replaces it when it announced none.
   *
   * @returns `"signalled"` or `"replaced"`, or `"failed"` when the replace failed.
   */
  async reloadPrivate(
    name: string,
  ): Promise<"signalled" | "replaced" | "failed"> {
    const entry = this.#workers.get(name);
    if (!entry) throw new TypeError(`Unknown worker "${name}"`);
    const active = entry.active;
    const signal = active[0]?.reloadSignal;
    if (
      active.length > 0 && signal &&
      active.every((i) => i.reloadSignal === signal)
    ) {
      for (const instance of active) {
        try {
          instance.signal(signal);
        } catch (err) {
          this.#log.warn("reload signal failed", {
            worker: name,
            pid: instance.pid,
            error: err,
          });
          return await this.replace(name, "private-changed")
            ? "replaced"
            : "failed";
        }
        this.#log.info("worker signalled", {
          worker: name,
          pid: instance.pid,
          signal,
          reason: "private-changed",
        });
      }
      return "signalled";
    }
    return await this.replace(name, "private-changed") ? "replaced" : "failed";
  }

  /** Drains and stops a worker, then forgets it. */
  async remove(name: string): Promise<void> {
    const entry = this.#workers.get(name);
    if (!entry) return;
    entry.transition({ status: "stopping" });
    clearTimeout(entry.retryTimer);
    entry.queued = undefined;
    this.#table.delete(name);
    this.#workers.delete(name);
    await entry.running?.catch(() => false);
    const old = entry.active;
    entry.active = [];
    await Promise.all(old.map((instance) => this.#retire(entry, instance, 0)));
  }

  /** Stops every worker (SIGTERM, then SIGKILL of the group after the grace period). */
  async shutdown(): Promise<void> {
    this.#closed = true;
    this.#monitor.stop();
    await Promise.all(
      [...this.#workers.keys()].map((name) => this.remove(name)),
    );
    await Promise.all([...this.#retiring]);
  }

  #enqueue(
    entry: WorkerEntry,
    reason: RestartReason | "start",
  ): Promise<boolean> {
    entry.queued = reason;
    if (!entry.running) {
      entry.running = (async () => {
        let ok = false;
        while (entry.queued !== undefined) {
          const next = entry.queued;
          entry.queued = undefined;
          ok = await this.#replaceOnce(entry, next);
        }
        return ok;
      })().finally(() => entry.running = undefined);
    }
    return entry.running;
  }

  #workerEnv(entry: WorkerEntry, port: number): Record<string, string> {
    return workerEnv(entry.spec, port, {
      base: this.#env,
      mode: this.#mode,
      memoryMb:
        this.#config.deployment[this.#mode].resources.worker_max_memory_mb,
    });
  }

  #startInstance(entry: WorkerEntry): Instance {
    const port = this.#pool.acquire();
    try {
      return new Instance({
        name: entry.name,
        command: entry.spec.binPath,
        cwd: entry.spec.dir,
        env: this.#workerEnv(entry, port),
        port,
        logger: this.#log,
        ...(this.#spawn ? { spawn: this.#spawn } : {}),
        ...(this.#fetch ? { fetch: this.#fetch } : {}),
      });
    } catch (err) {
      this.#pool.release(port);
      throw err;
    }
  }

  async #replaceOnce(
    entry: WorkerEntry,
    reason: RestartReason | "start",
  ): Promise<boolean> {
    if (this.#closed || !this.#workers.has(entry.name)) return false;
    clearTimeout(entry.retryTimer);
    const { spec } = entry;
    const fields = { worker: spec.name, reason };
    if (!(await fileExists(spec.binPath))) {
      const error = spec.kind === "binary"
        ? `No executable at "${spec.binPath}"`
        : `No binary at "${spec.binPath}": build it with "deno task build" or scripts/build-prod.sh${
          spec.kind === "go" ? " (Go workers need go on PATH)" : ""
        }, then reload`;
      entry.lastError = error;
      if (entry.active.length === 0) {
        entry.transition({ status: "failed", error });
      }
      this.#log.error("worker cannot start", { ...fields, error });
      return false;
    }
    if (entry.active.length === 0 && entry.state.status !== "crashed") {
      entry.transition({ status: "starting" });
    }
    if (reason !== "start") this.#log.info("worker restarting", fields);
    const started = Date.now();
    const fresh: Instance[] = [];
    const { settings } = spec;
    try {
      for (let i = 0; i < Math.max(1, settings.instances); i++) {
        fresh.push(this.#startInstance(entry));
      }
      await Promise.all(fresh.map((instance) =>
        instance.waitHealthy({
          path: settings.health_path,
          delayMs: this.#config.workers.startup_delay_ms,
          timeoutMs: settings.startup_timeout_ms,
        })
      ));
    } catch (err) {
      const error = errorMessage(err);
      await Promise.all(fresh.map(async (instance) => {
        await instance.stop(
          Math.min(this.#config.workers.shutdown_grace_period_ms, 1000),
        );
        this.#pool.release(instance.port);
      }));
      entry.lastError = error;
      this.#log.error("worker start failed", {
        ...fields,
        error,
        kept_old: entry.active.length > 0,
      });
      if (
        entry.active.length === 0 && this.#workers.has(entry.name) &&
        !this.#closed
      ) {
        this.#scheduleRetry(entry, error);
      }
      return false;
    }
    if (this.#closed || !this.#workers.has(entry.name)) {
      await Promise.all(
        fresh.map((instance) => this.#retire(entry, instance, 0)),
      );
      return false;
    }
    const old = entry.active;
    entry.active = fresh;
    entry.maxRequestsTriggered = false;
    for (const instance of fresh) this.#watchExit(entry, instance);
    if (reason !== "start") {
      entry.restarts++;
      entry.lastRestartReason = reason;
    }
    entry.lastError = null;
    entry.transition({ status: "healthy" });
    this.#log.info(reason === "start" ? "worker started" : "worker replaced", {
      ...fields,
      pid: fresh.map((i) => i.pid).join(","),
      port: fresh.map((i) => i.port).join(","),
      old_pid: old.length ? old.map((i) => i.pid).join(",") : undefined,
      ms: Date.now() - started,
    });
    for (const instance of old) {
      this.#retire(entry, instance, this.#config.workers.restart_delay_ms);
    }
    return true;
  }

  #scheduleRetry(entry: WorkerEntry, error: string): void {
    const delay = entry.backoffMs;
    entry.backoffMs = Math.min(delay * 2, MAX_BACKOFF_MS);
    entry.transition({ status: "crashed", error, retryAt: Date.now() + delay });
    clearTimeout(entry.retryTimer);
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      this.#enqueue(entry, "crashed");
    }, delay);
  }

  #watchExit(entry: WorkerEntry, instance: Instance): void {
    const healthyAt = Date.now();
    instance.exited.then((status) => {
      if (!entry.active.includes(instance)) return;
      entry.active = entry.active.filter((i) => i !== instance);
      entry.retiredRequests += instance.requests;
      this.#pool.release(instance.port);
      const error = `Exited unexpectedly with ${
        status.signal ? `signal ${status.signal}` : `code ${status.code}`
      }`;
      entry.lastError = error;
      this.#log.warn("worker crashed", {
        worker: entry.name,
        pid: instance.pid,
        error,
      });
      if (Date.now() - healthyAt > STABLE_MS) entry.backoffMs = 100;
      if (this.#closed || !this.#workers.has(entry.name)) return;
      if (entry.active.length > 0) {
        entry.transition({ status: "unhealthy", error });
        this.#enqueue(entry, "crashed");
      } else {
        this.#scheduleRetry(entry, error);
      }
    });
  }

  #retire(
    entry: WorkerEntry,
    instance: Instance,
    delayMs: number,
  ): Promise<void> {
    entry.draining.add(instance);
    const done = (async () => {
      if (delayMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
      const idle = await instance.waitIdle(
        entry.spec.settings.drain_timeout_ms,
      );
      if (!idle) {
        this.#log.warn("drain timed out", {
          worker: entry.name,
          pid: instance.pid,
          in_flight: instance.inFlight,
        });
      }
      const status = await instance.stop(
        this.#config.workers.shutdown_grace_period_ms,
      );
      this.#pool.release(instance.port);
      entry.draining.delete(instance);
      entry.retiredRequests += instance.requests;
      this.#log.info("worker instance stopped", {
        worker: entry.name,
        pid: instance.pid,
        code: status.code,
        signal: status.signal ?? undefined,
      });
    })();
    this.#retiring.add(done);
    done.finally(() => this.#retiring.delete(done));
    return done;
  }
}
