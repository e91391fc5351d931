import type { Config, Mode, WorkerSpec } from "../config/mod.ts";
import { type Logger, silentLogger } from "../log/mod.ts";
import type { RouteTable } from "../routes/mod.ts";
import { Instance, type SpawnFn } from "./instance.ts";
import { PortPool } from "./port_pool.ts";
import { HealthMonitor } from "./_health_monitor.ts";
import { type Clock, systemClock } from "./clock.ts";
import {
  type RestartReason,
  WorkerEntry,
  type WorkerStatusJson,
} from "./worker.ts";
import { baseEnv, errorMessage, fileExists, workerEnv } from "./_env.ts";

/** True once the worker is being removed (read through a call: the state changes across awaits). */
function stopping(entry: WorkerEntry): boolean {
  return entry.state.status === "stopping";
}

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
  /** Time and timers of crash-restart backoff. Default: the system clock. */
  clock?: Clock;
  /** Throw on an illegal lifecycle transition. Default: when `TQ_STRICT_LIFECYCLE=1` (the tests set it). */
  strict?: boolean;
}

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
  #removing = new Map<string, Promise<void>>();
  #closed = false;
  #closing = new AbortController();
  #monitor: HealthMonitor;
  #clock: Clock;
  #strict: boolean;

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
      clock = systemClock,
      strict = Deno.env.get("TQ_STRICT_LIFECYCLE") === "1",
    } = options;
    this.#clock = clock;
    this.#strict = strict;
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

  /** Records a problem of a worker that leaves it serving (a failed build): it shows as `last_error`. */
  noteError(name: string, error: string): void {
    this.#workers.get(name)?.noteError(error);
  }

  /**
   * Adds a worker and starts it; resolves true when it serves. A worker of the
   * same name still stopping is waited for first.
   *
   * @throws {TypeError} When a worker of that name runs.
   */
  async add(spec: WorkerSpec): Promise<boolean> {
    await this.#removing.get(spec.name);
    if (this.#workers.has(spec.name)) {
      throw new TypeError(`Worker "${spec.name}" already exists`);
    }
    if (this.#closed) return false;
    const entry = new WorkerEntry(spec, {
      logger: this.#log,
      clock: this.#clock,
      strict: this.#strict,
      onMaxRequests: (w) => {
        this.replace(w.name, "max-requests").catch((err) =>
          this.#log.error("replace failed", { worker: w.name, error: err })
        );
      },
    });
    this.#workers.set(spec.name, entry);
    this.#table.put(entry.view);
    this.#monitor.start();
    return await this.#enqueue(entry, "start");
  }

  /**
   * Applies a new spec to a known worker. A changed route or settings replaces
   * it (`config-changed`); `reason` forces a replace with that reason. A new
   * route is served only once an instance started with it is healthy; until
   * then (and for good, if that fails) the old instance keeps the old route.
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

  /**
   * Drains and stops a worker, then forgets it. It shows as `stopping` in the
   * status until its last instance is gone.
   */
  remove(name: string): Promise<void> {
    const removing = this.#removing.get(name);
    if (removing) return removing;
    const entry = this.#workers.get(name);
    if (!entry) return Promise.resolve();
    entry.transition({ status: "stopping" });
    entry.cancelRetry();
    entry.queued = undefined;
    entry.wakeWaiters();
    this.#table.delete(name);
    const done = (async () => {
      await entry.running?.catch(() => false);
      const old = entry.active;
      entry.active = [];
      await Promise.all(
        old.map((instance) => this.#retire(entry, instance, 0)),
      );
      // Instances retired by an earlier replace finish their requests too.
      await Promise.all([...entry.retiring]);
    })().finally(() => {
      this.#workers.delete(name);
      this.#removing.delete(name);
    });
    this.#removing.set(name, done);
    return done;
  }

  /**
   * Stops every worker (SIGTERM, then SIGKILL of the group after the grace
   * period); starts under way are cancelled.
   */
  async shutdown(): Promise<void> {
    this.#closed = true;
    this.#closing.abort();
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
    if (this.#closed || stopping(entry)) return false;
    entry.cancelRetry();
    const { spec } = entry;
    const fields = { worker: spec.name, reason };
    if (!(await fileExists(spec.binPath))) {
      const error = spec.kind === "binary"
        ? `No executable at "${spec.binPath}"`
        : `No binary at "${spec.binPath}": build it with "deno task build" or scripts/build-prod.sh${
          spec.kind === "go" ? " (Go workers need go on PATH)" : ""
        }, then reload`;
      if (entry.active.length === 0) {
        entry.transition({ status: "failed", error });
      } else entry.noteError(error);
      this.#log.error("worker cannot start", { ...fields, error });
      return false;
    }
    if (
      entry.active.length === 0 && entry.state.status !== "crashed" &&
      entry.state.status !== "starting"
    ) {
      entry.transition({ status: "starting" });
    }
    if (reason !== "start") {
      // Counted when tried, as the log shows it: a crash loop whose restarts
      // fail must not read "restarts 0" in /api/status.
      entry.restarts++;
      entry.lastRestartReason = reason;
      this.#log.info("worker restarting", fields);
    }
    const started = Date.now();
    const fresh: Instance[] = [];
    const { settings } = spec;
    try {
      for (let i = 0; i < Math.max(1, settings.instances); i++) {
        fresh.push(this.#startInstance(entry));
      }
      // The server stopping, or this worker being removed, ends a start at once.
      const signal = AbortSignal.any([this.#closing.signal, entry.stopSignal]);
      await Promise.all(fresh.map((instance) =>
        instance.waitHealthy({
          path: settings.health_path,
          delayMs: this.#config.workers.startup_delay_ms,
          timeoutMs: settings.startup_timeout_ms,
        }, signal)
      ));
    } catch (err) {
      const cancelled = this.#closing.signal.aborted;
      const error = cancelled
        ? "Start cancelled: the server is stopping"
        : errorMessage(err);
      // Its whole group goes, SIGKILL after the grace period; then its port is free.
      await Promise.all(fresh.map(async (instance) => {
        await instance.stop(this.#config.workers.shutdown_grace_period_ms);
        this.#pool.release(instance.port);
      }));
      if (cancelled || stopping(entry)) {
        this.#log.info("worker start cancelled", fields);
        return false;
      }
      this.#log.error("worker start failed", {
        ...fields,
        error,
        kept_old: entry.active.length > 0,
      });
      if (entry.active.length === 0) {
        entry.scheduleRetry(error, () => this.#enqueue(entry, "crashed"));
      } else entry.noteError(error);
      return false;
    }
    if (this.#closed || stopping(entry)) {
      await Promise.all(
        fresh.map((instance) => this.#retire(entry, instance, 0)),
      );
      return false;
    }
    const old = entry.serve(fresh);
    // The route may have changed with the spec: it switches now, with the new instance.
    this.#table.put(entry.view);
    for (const instance of fresh) this.#watchExit(entry, instance);
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

  #watchExit(entry: WorkerEntry, instance: Instance): void {
    const healthyAt = this.#clock.now();
    instance.exited.then(async (status) => {
      if (!entry.active.includes(instance)) return;
      entry.active = entry.active.filter((i) => i !== instance);
      entry.retiredRequests += instance.requests;
      entry.instanceEnded(this.#clock.now() - healthyAt);
      const error = `Exited unexpectedly with ${
        status.signal ? `signal ${status.signal}` : `code ${status.code}`
      }`;
      this.#log.warn("worker crashed", {
        worker: entry.name,
        pid: instance.pid,
        error,
      });
      if (!this.#closed && !stopping(entry)) {
        if (entry.running) {
          // The replace under way brings new instances, or arms the retry if it fails.
          entry.transition({ status: "unhealthy", error });
        } else if (entry.active.length > 0) {
          entry.transition({ status: "unhealthy", error });
          this.#enqueue(entry, "crashed");
        } else {
          entry.scheduleRetry(error, () => this.#enqueue(entry, "crashed"));
        }
      }
      // What it left in its group dies at once; its port is free once the group is gone.
      await instance.stop(0);
      this.#pool.release(instance.port);
    });
  }

  #retire(
    entry: WorkerEntry,
    instance: Instance,
    delayMs: number,
  ): Promise<void> {
    entry.draining.add(instance);
    instance.drain();
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
      // A worker that dies of another signal while it stops (SIGABRT from a
      // thread left running) has a bug its author wants to hear about.
      const abnormal = status.signal !== null && status.signal !== "SIGTERM" &&
        status.signal !== "SIGKILL";
      this.#log[abnormal ? "warn" : "info"]("worker instance stopped", {
        worker: entry.name,
        pid: instance.pid,
        code: status.code,
        signal: status.signal ?? undefined,
      });
    })();
    this.#retiring.add(done);
    entry.retiring.add(done);
    done.finally(() => {
      this.#retiring.delete(done);
      entry.retiring.delete(done);
    });
    return done;
  }
}
