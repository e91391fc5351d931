// A worker's lifecycle states, their allowed moves, and how /api/status
// shows a worker and its instances.

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
 * which checks it against {@linkcode WORKER_TRANSITIONS} and logs every change.
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

/**
 * The moves a worker's state may make (a state may always be entered again
 * with new details, e.g. the next `retryAt`). `stopping` is final: a removed
 * worker that comes back is a new entry.
 */
export const WORKER_TRANSITIONS: Readonly<
  Record<WorkerStatus, readonly WorkerStatus[]>
> = {
  starting: ["healthy", "crashed", "failed", "stopping"],
  healthy: ["unhealthy", "crashed", "stopping"],
  unhealthy: ["healthy", "crashed", "stopping"],
  crashed: ["starting", "healthy", "failed", "stopping"],
  failed: ["starting", "healthy", "crashed", "stopping"],
  stopping: [],
};

/** JSON shape of one instance in `/api/status` (SPEC §10). */
export interface InstanceStatusJson {
  pid: number;
  port: number;
  /** `starting` until healthy; `healthy` (or `unhealthy` after a failed probe) while it serves; `stopping` while it drains. */
  status: WorkerStatus;
  started_at: string;
  requests: number;
  in_flight: number;
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
  /** Serving instances first (the first is the worker's `pid`/`port`), then starting ones, then draining ones. */
  instances: InstanceStatusJson[];
}

/** An instance as `/api/status` shows it. */
export function instanceJson(
  instance: Instance,
  status: WorkerStatus,
): InstanceStatusJson {
  return {
    pid: instance.pid,
    port: instance.port,
    status,
    started_at: instance.startedAt.toISOString(),
    requests: instance.requests,
    in_flight: instance.inFlight,
  };
}

/** An ISO date of epoch ms; null for 0 (absent). */
export function isoOrNull(ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null;
}
