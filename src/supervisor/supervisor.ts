import type { Config, Mode, WorkerSpec } from "../config/mod.ts";
import { type Logger, silentLogger } from "../log/mod.ts";
import type { RouteTable } from "../routes/mod.ts";
import { Instance, type SpawnFn } from "./instance.ts";
import { PortPool } from "./port_pool.ts";
import { HealthMonitor } from "./_health_monitor.ts";
import { type Clock, systemClock } from "./clock.ts";
import {
  type ReplaceScope,
  type RestartReason,
  WorkerEntry,
  type WorkerMtimes,
  type WorkerStatusJson,
} from "./worker.ts";
import { baseEnv, errorMessage, fileExists, workerEnv } from "./_env.ts";
import { type RollHost, rollInstances } from "./_rolling.ts";
import { within } from "../timeouts.ts";

/** What an instance's connection drain that ran out of time rejects with (never shown). */
const DRAIN_OVER = new Error("WebSocket drain over");

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
  /**
   * Called when an instance leaves its route to be stopped (replaced,
   * recycled, removed): the server closes what stays connected to it (its
   * WebSockets get 1012 within `drainMs`, `websocket_drain_ms`). The
   * instance is stopped once the returned promise settles, or `drainMs` +
   * 1 s passed, and its in-flight requests are done. Default: nothing.
   */
  retireConnections?: (
    instance: { worker: string; origin: string; drainMs: number },
  ) => Promise<void>;
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
  /** What a rolling replace uses of the supervisor. */
  #rollHost: RollHost = {
    log: () => this.#log,
    restartDelayMs: () => this.#config.workers.restart_delay_ms,
    signal: (entry) =>
      AbortSignal.any([this.#closing.signal, entry.stopSignal]),
    ended: (entry) => this.#closed || stopping(entry),
    startHealthy: (entry, count, signal) =>
      this.#startHealthy(entry, count, signal),
    startFailed: (entry, fields, err) => this.#startFailed(entry, fields, err),
    retire: (entry, instance, delayMs) =>
      this.#retire(entry, instance, delayMs),
    watchExit: (entry, instance) => this.#watchExit(entry, instance),
    // The missing instances come back after the crash backoff; the worker
    // is `unhealthy` meanwhile, or `crashed` when none serves.
    retryLater: (entry, error) =>
      entry.scheduleRetry(
        error,
        () => this.#enqueue(entry, "crashed", new Set()),
      ),
  };
  #retireConnections: SupervisorOptions["retireConnections"];

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
      retireConnections,
    } = options;
    this.#retireConnections = retireConnections;
    this.#clock = clock;
    this.#strict = strict;
    this.#config = config;
    this.#mode = mode;
    this.#table = table;
    this.#log = logger;
    this.#monitor = new HealthMonitor(this.#workers, {
      intervalMs: healthIntervalMs,
      logger: logger,
      onUnhealthy: (entry, instance) =>
        this.#enqueue(entry, "health-failed", new Set([instance])),
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

  /**
   * Records file mtimes seen for a worker (the ones given; the others keep
   * theirs): what the next reload check compares against. Unknown workers are
   * ignored.
   */
  recordMtimes(name: string, mtimes: Partial<WorkerMtimes>): void {
    const entry = this.#workers.get(name);
    if (entry) entry.mtimes = { ...entry.mtimes, ...mtimes };
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
      onMaxRequests: (w, instance) => {
        // That instance alone is recycled; the others keep serving.
        this.#enqueue(w, "max-requests", new Set([instance])).catch((err) =>
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
   * A change of `instances` alone starts or stops the difference and
   * restarts nothing.
   */
  async update(
    spec: WorkerSpec,
    reason?: RestartReason,
  ): Promise<"unchanged" | "replaced" | "failed"> {
    const entry = this.#workers.get(spec.name);
    if (!entry) throw new TypeError(`Unknown worker "${spec.name}"`);
    const key = (s: WorkerSpec) =>
      JSON.stringify([
        s.route,
        { ...s.settings, instances: 0 },
        s.kind,
        s.binPath,
      ]);
    const changed = key(entry.spec) !== key(spec);
    const rescaled = entry.spec.settings.instances !== spec.settings.instances;
    entry.spec = spec;
    if (!changed && !reason) {
      if (!rescaled) return "unchanged";
      return await this.#enqueue(entry, "config-changed", new Set())
        ? "replaced"
        : "failed";
    }
    return await this.replace(spec.name, reason ?? "config-changed")
      ? "replaced"
      : "failed";
  }

  /**
   * Replaces a worker's instances (SPEC §5): with one instance, start the new
   * one, switch, drain the old one; with several, the same one instance at a
   * time, so all but one serve throughout. Requests made while a replace
   * runs coalesce into one more run after it.
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
    entry.queuedScope = "all";
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

  /**
   * Queues a replace of `scope` (default every instance) and runs the queue
   * unless it runs already. A replace of every instance takes the reason of
   * the last request; narrower requests add their instances to it.
   */
  #enqueue(
    entry: WorkerEntry,
    reason: RestartReason | "start",
    scope: ReplaceScope = "all",
  ): Promise<boolean> {
    const queued = entry.queuedScope;
    if (entry.queued === undefined || scope === "all") {
      entry.queued = reason;
      entry.queuedScope = scope === "all" ? "all" : new Set(scope);
    } else if (queued !== "all") {
      for (const instance of scope) queued.add(instance);
      if (scope.size > 0) entry.queued = reason;
    }
    if (!entry.running) {
      entry.running = (async () => {
        let ok = false;
        while (entry.queued !== undefined) {
          const next = entry.queued;
          const nextScope = entry.queuedScope;
          entry.queued = undefined;
          entry.queuedScope = "all";
          ok = await this.#replaceOnce(entry, next, nextScope);
          // An instance that died after the replace last looked is restarted alone.
          if (entry.queued === undefined && this.#short(entry)) {
            entry.queued = "crashed";
            entry.queuedScope = new Set();
          }
        }
        return ok;
      })().finally(() => entry.running = undefined);
    }
    return entry.running;
  }

  /** True when some but not all of a worker's instances serve and no retry is armed. */
  #short(entry: WorkerEntry): boolean {
    return !this.#closed && !stopping(entry) && !entry.retryArmed &&
      entry.active.length > 0 && entry.active.length < entry.target;
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
    scope: ReplaceScope,
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
      } else if (entry.active.length < entry.target) {
        // Some instances serve: the missing ones are tried again, backing off.
        this.#rollHost.retryLater(entry, error);
      } else entry.noteError(error);
      this.#log.error("worker cannot start", { ...fields, error });
      return false;
    }
    // All at once: a first start, a worker with nothing serving, a new route
    // (old and new instances cannot share a route), and one instance.
    const whole = reason === "start" || entry.active.length === 0 ||
      spec.route !== entry.route ||
      (entry.target === 1 && (scope === "all" || scope.size > 0));
    return whole
      ? await this.#replaceAll(entry, reason)
      : await rollInstances(entry, reason, scope, this.#rollHost);
  }

  /**
   * Starts `count` instances and waits until each is healthy; on a failure
   * every one of them is stopped (SIGKILL after the grace period) and its
   * port freed, and the error is thrown.
   */
  async #startHealthy(
    entry: WorkerEntry,
    count: number,
    signal: AbortSignal,
  ): Promise<Instance[]> {
    const { settings } = entry.spec;
    const fresh: Instance[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const instance = this.#startInstance(entry);
        fresh.push(instance);
        entry.starting.add(instance);
      }
      await Promise.all(fresh.map((instance) =>
        instance.waitHealthy({
          path: settings.health_path,
          delayMs: this.#config.workers.startup_delay_ms,
          timeoutMs: settings.startup_timeout_ms,
        }, signal)
      ));
      return fresh;
    } catch (err) {
      // Its whole group goes, SIGKILL after the grace period; then its port is free.
      await Promise.all(fresh.map(async (instance) => {
        await instance.stop(this.#config.workers.shutdown_grace_period_ms);
        this.#pool.release(instance.port);
      }));
      throw err;
    } finally {
      for (const instance of fresh) entry.starting.delete(instance);
    }
  }

  /**
   * What a failed start leaves: nothing when the server stops or the worker
   * goes; else a log line and, with fewer instances serving than configured,
   * a retry after the crash backoff. Returns false.
   */
  #startFailed(
    entry: WorkerEntry,
    fields: Record<string, unknown>,
    err: unknown,
  ): false {
    const cancelled = this.#closing.signal.aborted;
    const error = cancelled
      ? "Start cancelled: the server is stopping"
      : errorMessage(err);
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
    } else if (entry.active.length < entry.target) {
      this.#rollHost.retryLater(entry, error);
    } else entry.noteError(error);
    return false;
  }

  /** Starts every instance of the worker, then switches them all in at once. */
  async #replaceAll(
    entry: WorkerEntry,
    reason: RestartReason | "start",
  ): Promise<boolean> {
    const fields = { worker: entry.name, reason };
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
    // The server stopping, or this worker being removed, ends a start at once.
    const signal = AbortSignal.any([this.#closing.signal, entry.stopSignal]);
    let fresh: Instance[];
    try {
      fresh = await this.#startHealthy(entry, entry.target, signal);
    } catch (err) {
      return this.#startFailed(entry, fields, err);
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
          // The others serve on; this one alone comes back, after the backoff.
          this.#rollHost.retryLater(entry, error);
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
    const drainMs = entry.spec.settings.websocket_drain_ms;
    const connections = this.#retireConnections?.({
      worker: entry.name,
      origin: instance.origin,
      drainMs,
    });
    const done = (async () => {
      if (delayMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
      if (connections) {
        // Bounded: the proxy's closing handshakes are, but this is its promise.
        await within(connections, drainMs + 1000, () => DRAIN_OVER).catch(
          () => {},
        );
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
