import type { WorkerSpec } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Upstream, UpstreamTarget } from "../routes/mod.ts";
import type { Instance } from "./instance.ts";

/** Why a worker was (re)started; every restart is logged with exactly one. */
export type RestartReason =
  | "binary-changed"
  | "build"
  | "private-changed"
  | "config-changed"
  | "crashed"
  | "health-failed"
  | "max-requests"
  | "manual"
  | "server-upgrade";

/** Status of a worker as reported by `/api/status`. */
export type WorkerStatus =
  | "starting"
  | "healthy"
  | "unhealthy"
  | "stopping"
  | "crashed"
  | "failed";

/**
 * The lifecycle of a worker. Changed only through {@linkcode WorkerEntry.transition},
 * which logs every change.
 */
export type WorkerState =
  /** No instance serves yet; the first one is being started. */
  | { status: "starting" }
  /** At least the configured number of instances serve. */
  | { status: "healthy" }
  /** Some, but fewer than the configured number of instances serve. */
  | { status: "unhealthy"; error: string }
  /** The worker is being removed or the server is shutting down. */
  | { status: "stopping" }
  /** No instance serves; a restart is scheduled at `retryAt` (epoch ms). */
  | { status: "crashed"; error: string; retryAt: number }
  /** The worker cannot run until something changes (e.g. no binary yet). */
  | { status: "failed"; error: string };

/** File mtimes recorded for a worker (epoch ms; 0 when absent). */
export interface WorkerMtimes {
  binary: number;
  public: number;
  private: number;
}

/** JSON shape of a worker in `/api/status` (SPEC §10). */
export interface WorkerStatusJson {
  name: string;
  route: string;
  status: WorkerStatus;
  pid: number | null;
  port: number | null;
  started_at: string | null;
  binary_path: string;
  binary_mtime: string | null;
  public_mtime: string | null;
  private_mtime: string | null;
  restarts: number;
  last_restart_reason: RestartReason | null;
  last_error: string | null;
  requests: number;
  in_flight: number;
  instances: {
    pid: number;
    port: number;
    started_at: string;
    in_flight: number;
    requests: number;
  }[];
}

function isoOrNull(ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null;
}

/** The supervisor's record of one worker; the proxy sees it only as an {@linkcode Upstream}. */
export class WorkerEntry implements Upstream {
  spec: WorkerSpec;
  #state: WorkerState = { status: "starting" };
  /** Instances that receive new requests. */
  active: Instance[] = [];
  /** Instances that finish their in-flight requests before they stop. */
  readonly draining = new Set<Instance>();
  restarts = 0;
  lastRestartReason: RestartReason | null = null;
  lastError: string | null = null;
  /** Requests of instances that already stopped. */
  retiredRequests = 0;
  mtimes: WorkerMtimes = { binary: 0, public: 0, private: 0 };
  /** Next crash-restart delay. */
  backoffMs = 100;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The reason of a replace requested while one runs; it runs once more after. */
  queued: RestartReason | "start" | undefined;
  running: Promise<boolean> | undefined;
  maxRequestsTriggered = false;
  #next = 0;
  #log: Logger;
  #onMaxRequests: (entry: WorkerEntry) => void;

  constructor(
    spec: WorkerSpec,
    log: Logger,
    onMaxRequests: (entry: WorkerEntry) => void,
  ) {
    this.spec = spec;
    this.#log = log;
    this.#onMaxRequests = onMaxRequests;
  }

  /** The current lifecycle state; change it only with {@linkcode transition}. */
  get state(): WorkerState {
    return this.#state;
  }

  get name(): string {
    return this.spec.name;
  }

  get route(): string {
    return this.spec.route;
  }

  get writeTimeoutMs(): number {
    return this.spec.settings.write_timeout_seconds * 1000;
  }

  /** Moves the worker to a new state and logs the change. */
  transition(next: WorkerState): void {
    const prev = this.#state.status;
    this.#state = next;
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

  acquire(): UpstreamTarget | undefined {
    const count = this.active.length;
    if (count === 0) return undefined;
    const instance = this.active[this.#next++ % count]!;
    const release = instance.begin();
    const max = this.spec.settings.max_requests;
    if (max > 0 && instance.requests >= max && !this.maxRequestsTriggered) {
      this.maxRequestsTriggered = true;
      this.#onMaxRequests(this);
    }
    return { origin: instance.origin, release };
  }

  retryAfterSeconds(): number {
    if (this.state.status === "crashed") {
      return Math.max(1, Math.ceil((this.state.retryAt - Date.now()) / 1000));
    }
    return 1;
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
      instances: this.active.map((i) => ({
        pid: i.pid,
        port: i.port,
        started_at: i.startedAt.toISOString(),
        in_flight: i.inFlight,
        requests: i.requests,
      })),
    };
  }
}
