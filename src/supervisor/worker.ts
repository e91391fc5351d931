import type { WorkerSpec } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Upstream, UpstreamTarget } from "../routes/mod.ts";
import { IllegalTransitionError, type Instance } from "./instance.ts";
import { Backoff } from "./backoff.ts";
import { type Clock, systemClock, type TimerId } from "./clock.ts";
import {
  instanceJson,
  isoOrNull,
  type RestartReason,
  WORKER_TRANSITIONS,
  type WorkerState,
  type WorkerStatusJson,
} from "./worker_state.ts";

export {
  type InstanceStatusJson,
  type RestartReason,
  WORKER_TRANSITIONS,
  type WorkerState,
  type WorkerStatus,
  type WorkerStatusJson,
} from "./worker_state.ts";

/** File mtimes recorded for a worker (epoch ms; 0 when absent). */
export interface WorkerMtimes {
  binary: number;
  public: number;
  private: number;
}

/**
 * What the next replace of a worker covers: every instance serving when it
 * starts (`"all"`), or only the instances in the set (one that reached
 * `max_requests` or failed its health checks). With an empty set it only
 * brings the worker back to its configured number of instances (a crashed
 * one restarted alone, a changed `instances`).
 */
export type ReplaceScope = "all" | Set<Instance>;

/** Options for {@linkcode WorkerEntry}. */
export interface WorkerEntryOptions {
  /** Logger of state changes. */
  logger: Logger;
  /** Called once per instance, when it reaches `max_requests`. */
  onMaxRequests: (entry: WorkerEntry, instance: Instance) => void;
  /** Time and timers (retry timer, `Retry-After`). Default: the system clock. */
  clock?: Clock;
  /** Throw on an illegal transition instead of logging it. Default false (tests set it). */
  strict?: boolean;
}

/**
 * The supervisor's record of one worker, and the one owner of its lifecycle:
 * its state, its `last_error`, its crash-restart timer and backoff. The route
 * table and the proxy see only its read-only {@linkcode WorkerEntry.view}.
 */
export class WorkerEntry {
  /** The spec new instances start from (the serving route may still be the old one). */
  spec: WorkerSpec;
  /** Instances that receive new requests. */
  active: Instance[] = [];
  /** New instances waiting for their first healthy probe. */
  readonly starting = new Set<Instance>();
  /** Instances that finish their in-flight requests before they stop. */
  readonly draining = new Set<Instance>();
  /** The retirements under way (drain, then stop) of this worker's instances. */
  readonly retiring = new Set<Promise<void>>();
  restarts = 0;
  lastRestartReason: RestartReason | null = null;
  /** Requests of instances that already stopped. */
  retiredRequests = 0;
  mtimes: WorkerMtimes = { binary: 0, public: 0, private: 0 };
  /** The reason of a replace requested while one runs; it runs once more after. */
  queued: RestartReason | "start" | undefined;
  /** What the queued replace covers. */
  queuedScope: ReplaceScope = "all";
  running: Promise<boolean> | undefined;
  /** What the proxy sees: name, the route being served, and instance picking. */
  readonly view: Upstream;
  #state: WorkerState = { status: "starting" };
  #lastError: string | null = null;
  #retryTimer: TimerId | undefined;
  #backoff = new Backoff();
  #servingRoute: string;
  #waiters = new Set<() => void>();
  #next = 0;
  #log: Logger;
  #clock: Clock;
  #strict: boolean;
  #onMaxRequests: (entry: WorkerEntry, instance: Instance) => void;
  #stopping = new AbortController();

  constructor(spec: WorkerSpec, options: WorkerEntryOptions) {
    const { logger, onMaxRequests, clock = systemClock, strict = false } =
      options;
    this.spec = spec;
    this.#servingRoute = spec.route;
    this.#log = logger;
    this.#clock = clock;
    this.#strict = strict;
    this.#onMaxRequests = onMaxRequests;
    // deno-lint-ignore no-this-alias
    const entry = this;
    this.view = Object.freeze({
      get name() {
        return entry.name;
      },
      get route() {
        return entry.#servingRoute;
      },
      get writeTimeoutMs() {
        return entry.spec.settings.write_timeout_seconds * 1000;
      },
      get readTimeoutMs() {
        return entry.spec.settings.read_timeout_seconds * 1000;
      },
      get idleTimeoutMs() {
        return entry.spec.settings.idle_timeout_seconds * 1000;
      },
      get retryWindowMs() {
        return entry.spec.settings.retry_window_ms;
      },
      acquire: () => this.acquire(),
      retryAfterSeconds: () => this.retryAfterSeconds(),
      acquireWithin: (timeoutMs: number, signal?: AbortSignal) =>
        this.acquireWithin(timeoutMs, signal),
    });
  }

  /** Aborts when the worker enters `stopping`: a start under way gives up. */
  get stopSignal(): AbortSignal {
    return this.#stopping.signal;
  }

  /** The current lifecycle state; change it only with {@linkcode transition}. */
  get state(): WorkerState {
    return this.#state;
  }

  get name(): string {
    return this.spec.name;
  }

  /** The number of instances the spec asks for (`instances`, at least 1). */
  get target(): number {
    return Math.max(1, this.spec.settings.instances);
  }

  /** The route the worker's instances serve now (a changed route switches once its new instance is healthy). */
  get route(): string {
    return this.#servingRoute;
  }

  /** The last thing that went wrong, until a replace succeeds (`last_error` in `/api/status`). */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Records a problem that leaves the state as it is (a failed build or replace while the old instance serves). */
  noteError(error: string): void {
    this.#lastError = error;
  }

  /**
   * Moves the worker to a new state and logs the change. A state with an
   * error records it as `last_error`.
   *
   * @throws {IllegalTransitionError} When the move is not in {@linkcode WORKER_TRANSITIONS} and the entry is strict.
   */
  transition(next: WorkerState): void {
    const prev = this.#state.status;
    if (
      prev !== next.status && !WORKER_TRANSITIONS[prev].includes(next.status)
    ) {
      const err = new IllegalTransitionError(
        `worker "${this.name}"`,
        prev,
        next.status,
      );
      if (this.#strict) throw err;
      this.#log.error("illegal worker transition", {
        worker: this.name,
        error: err,
      });
    }
    this.#state = next;
    if ("error" in next) this.#lastError = next.error;
    if (next.status === "stopping") this.#stopping.abort();
    if (prev === next.status) return;
    const fields: Record<string, unknown> = {
      worker: this.name,
      from: prev,
      to: next.status,
    };
    if ("error" in next) fields.error = next.error;
    const level = next.status === "crashed" || next.status === "failed"
      ? "warn"
      : "info";
    this.#log[level]("worker state", fields);
  }

  /**
   * Puts `fresh` in service after a successful start or replace: the route
   * switches to the spec's, `last_error` and any armed retry are cleared.
   *
   * @returns The instances that served before, to be retired.
   */
  serve(fresh: Instance[]): Instance[] {
    const old = this.active;
    this.active = fresh;
    this.cancelRetry();
    this.#lastError = null;
    this.#servingRoute = this.spec.route;
    this.transition({ status: "healthy" });
    for (const wake of this.#waiters) wake();
    return old;
  }

  /**
   * Puts one new instance in service in place of `old` (same position, so the
   * first instance stays first), or beside the others when `old` is not given
   * or no longer serves. Requests waiting for an instance are woken.
   */
  swapIn(fresh: Instance, old?: Instance): void {
    const at = old ? this.active.indexOf(old) : -1;
    this.active = at < 0
      ? [...this.active, fresh]
      : this.active.with(at, fresh);
    for (const wake of this.#waiters) wake();
  }

  /**
   * Ends a replace that left the worker with its configured number of
   * instances: `healthy`, `last_error` and any armed retry cleared. With
   * fewer, the state stays as it is.
   */
  settle(): void {
    if (this.active.length < this.target) return;
    this.cancelRetry();
    this.#lastError = null;
    this.transition({ status: "healthy" });
  }

  /**
   * Arms the crash-restart timer with the next backoff delay and moves to
   * `crashed`, or to `unhealthy` while other instances still serve. An armed
   * timer is replaced, never doubled.
   */
  scheduleRetry(error: string, retry: () => void): number {
    const delay = this.#backoff.next();
    this.cancelRetry();
    this.transition(
      this.active.length > 0 ? { status: "unhealthy", error } : {
        status: "crashed",
        error,
        retryAt: this.#clock.now() + delay,
      },
    );
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = undefined;
      retry();
    }, delay);
    return delay;
  }

  /** Disarms the crash-restart timer. */
  cancelRetry(): void {
    this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  /** True while a crash-restart timer is armed. */
  get retryArmed(): boolean {
    return this.#retryTimer !== undefined;
  }

  /** Notes that an instance ended after serving `upMs`: one that stayed up long resets the backoff. */
  instanceEnded(upMs: number): void {
    this.#backoff.ended(upMs);
  }

  /**
   * Picks the instance with the fewest requests in flight, round-robin among
   * equals, and counts the request; undefined when none serves.
   */
  acquire(): UpstreamTarget | undefined {
    const active = this.active;
    const count = active.length;
    if (count === 0) return undefined;
    let instance = active[0]!;
    if (count > 1) {
      // Scan from where the last pick left off, so ties rotate.
      const start = this.#next % count;
      let best = start;
      let fewest = active[start]!.inFlight;
      for (let k = 1; k < count && fewest > 0; k++) {
        const at = (start + k) % count;
        const inFlight = active[at]!.inFlight;
        if (inFlight < fewest) {
          fewest = inFlight;
          best = at;
        }
      }
      this.#next = best + 1;
      instance = active[best]!;
    }
    const release = instance.begin();
    const max = this.spec.settings.max_requests;
    if (max > 0 && instance.requests >= max && !instance.recycling) {
      instance.recycling = true;
      this.#onMaxRequests(this, instance);
    }
    return { origin: instance.origin, release };
  }

  /**
   * Like {@linkcode acquire}, but waits up to `timeoutMs` (or until `signal`
   * aborts) for an instance to serve, e.g. the replacement of one that just died.
   */
  async acquireWithin(
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<UpstreamTarget | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const target = this.acquire();
      if (target) return target;
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted || this.#state.status === "stopping") {
        return undefined;
      }
      let wake = () => {};
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => wake();
      await new Promise<void>((resolve) => {
        wake = resolve;
        this.#waiters.add(resolve);
        timer = setTimeout(resolve, left);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
      this.#waiters.delete(wake);
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Seconds for `Retry-After`: until the armed retry, at least 1. */
  retryAfterSeconds(): number {
    if (this.state.status === "crashed") {
      return Math.max(
        1,
        Math.ceil((this.state.retryAt - this.#clock.now()) / 1000),
      );
    }
    return 1;
  }

  /** Wakes every {@linkcode acquireWithin} (the worker is going away). */
  wakeWaiters(): void {
    for (const wake of this.#waiters) wake();
  }

  /** The entry as `/api/status` shows it. */
  toJSON(): WorkerStatusJson {
    const first = this.active[0];
    const all = [...this.active, ...this.draining];
    return {
      name: this.name,
      route: this.route,
      status: this.state.status,
      pid: first?.pid ?? null,
      port: first?.port ?? null,
      started_at: first ? first.startedAt.toISOString() : null,
      binary_path: this.spec.binPath,
      binary_mtime: isoOrNull(this.mtimes.binary),
      public_mtime: isoOrNull(this.mtimes.public),
      private_mtime: isoOrNull(this.mtimes.private),
      restarts: this.restarts,
      last_restart_reason: this.lastRestartReason,
      last_error: this.lastError,
      requests: this.retiredRequests + all.reduce((n, i) => n + i.requests, 0),
      in_flight: all.reduce((n, i) => n + i.inFlight, 0),
      instances: [
        ...this.active.map((i) =>
          instanceJson(i, i.failedProbes > 0 ? "unhealthy" : "healthy")
        ),
        ...[...this.starting].map((i) => instanceJson(i, "starting")),
        ...[...this.draining].map((i) => instanceJson(i, "stopping")),
      ],
    };
  }
}
