import type { Config, Mode, WorkerSpec } from "../config/mod.ts";
import { type Logger, silentLogger } from "../log/mod.ts";
import type { RouteTable } from "../routes/mod.ts";
import type { Instance, SpawnFn } from "./instance.ts";
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
import { baseEnv } from "./_env.ts";
import { type CrashHost, startFailed, watchExit } from "./_crash.ts";
import { type ReplaceHost, replaceOnce } from "./_replace.ts";
import { type RetireConnections, retireInstance } from "./_retire.ts";
import { InstanceStarter } from "./_starter.ts";
import { enqueue } from "./_queue.ts";
import { signalReload } from "./_reload_signal.ts";
import { specChange } from "./_spec_change.ts";

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
  /**
   * Time and timers of the instances: health waits, the pause before an old
   * instance drains, the drain, the stop's grace period. Default: the system
   * clock (not `clock`: one whose timers fire only when a test says so
   * would hold every health wait).
   */
  instanceClock?: Clock;
  /** Throw on an illegal lifecycle transition. Default: when `TQ_STRICT_LIFECYCLE=1` (the tests set it). */
  strict?: boolean;
  /**
   * Called when an instance leaves its route to be stopped (replaced,
   * recycled, removed): the server closes what stays connected to it (its
   * WebSockets get 1012 within `drainMs`, `websocket_drain_ms`). The
   * instance is stopped once the returned promise settles, or `drainMs` +
   * 1 s passed, and its in-flight requests are done. Default: nothing.
   */
  retireConnections?: RetireConnections;
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
  #table: RouteTable;
  #log: Logger;
  #pool: PortPool;
  #workers = new Map<string, WorkerEntry>();
  #retiring = new Set<Promise<void>>();
  #removing = new Map<string, Promise<void>>();
  #closed = false;
  #closing = new AbortController();
  #monitor: HealthMonitor;
  #clock: Clock;
  #instanceClock: Clock;
  #starter: InstanceStarter;
  #strict: boolean;
  /** What a replace uses of the supervisor. */
  #host: ReplaceHost = {
    log: () => this.#log,
    restartDelayMs: () => this.#config.workers.restart_delay_ms,
    signal: (entry) =>
      AbortSignal.any([this.#closing.signal, entry.stopSignal]),
    ended: (entry) => this.#closed || stopping(entry),
    startHealthy: (entry, count, signal) =>
      this.#starter.startHealthy(entry, { count, signal }),
    startFailed: (entry, fields, err) =>
      startFailed(entry, err, { fields, host: this.#crashHost }),
    retire: (entry, instance, delayMs) =>
      this.#retire(entry, instance, delayMs),
    watchExit: (entry, instance) =>
      watchExit(entry, { instance, host: this.#crashHost }),
    // The missing instances come back after the crash backoff; the worker
    // is `unhealthy` meanwhile, or `crashed` when none serves.
    retryLater: (entry, error) =>
      entry.scheduleRetry(
        error,
        () => this.#enqueue(entry, "crashed", new Set()),
      ),
    publish: (entry) => this.#table.put(entry.view),
  };
  /** What a failed start or a crash uses of the supervisor. */
  #crashHost: CrashHost = {
    log: () => this.#log,
    closing: () => this.#closing.signal.aborted,
    ended: (entry) => this.#closed || stopping(entry),
    retryLater: (entry, error) => this.#host.retryLater(entry, error),
    retryAll: (entry, error) =>
      entry.scheduleRetry(error, () => this.#enqueue(entry, "crashed")),
    release: (instance) => this.#pool.release(instance.port),
    now: () => this.#clock.now(),
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
      instanceClock = systemClock,
      strict = Deno.env.get("TQ_STRICT_LIFECYCLE") === "1",
      retireConnections,
    } = options;
    this.#retireConnections = retireConnections;
    this.#clock = clock;
    this.#instanceClock = instanceClock;
    this.#strict = strict;
    this.#config = config;
    this.#table = table;
    this.#log = logger;
    this.#monitor = new HealthMonitor(this.#workers, {
      intervalMs: healthIntervalMs,
      logger: logger,
      onUnhealthy: (entry, instance) =>
        this.#enqueue(entry, "health-failed", new Set([instance])),
    });
    this.#pool = pool ??
      new PortPool(
        config.workers.port_range_start,
        config.workers.port_range_end,
      );
    this.#starter = new InstanceStarter({
      mode,
      config: () => this.#config,
      pool: this.#pool,
      logger,
      env,
      spawn,
      fetch: fetchFn,
      clock: instanceClock,
    });
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
    const change = specChange(entry.spec, spec);
    entry.spec = spec;
    if (change !== "replace" && !reason) {
      if (change === "none") return "unchanged";
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
    if (signalReload(entry, this.#log) === "signalled") return "signalled";
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

  /** Queues a replace of `scope` (default every instance); see {@linkcode enqueue}. */
  #enqueue(
    entry: WorkerEntry,
    reason: RestartReason | "start",
    scope: ReplaceScope = "all",
  ): Promise<boolean> {
    return enqueue(entry, reason, {
      scope,
      run: (next, nextScope) =>
        replaceOnce(entry, {
          reason: next,
          scope: nextScope,
          host: this.#host,
        }),
      // Some but not all instances serve, and no retry is armed.
      short: (entry) =>
        !this.#closed && !stopping(entry) && !entry.retryArmed &&
        entry.active.length > 0 && entry.active.length < entry.target,
    });
  }

  /** Drains and stops an instance taken out of service, after `delayMs`; awaited at shutdown. */
  #retire(
    entry: WorkerEntry,
    instance: Instance,
    delayMs: number,
  ): Promise<void> {
    const done = retireInstance(instance, {
      entry,
      delayMs,
      graceMs: () => this.#config.workers.shutdown_grace_period_ms,
      pool: this.#pool,
      logger: this.#log,
      clock: this.#instanceClock,
      retireConnections: this.#retireConnections,
    });
    this.#retiring.add(done);
    entry.retiring.add(done);
    done.finally(() => {
      this.#retiring.delete(done);
      entry.retiring.delete(done);
    });
    return done;
  }
}
