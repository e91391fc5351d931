// Folder-private: what a failed start or an instance that exits on its own
// leaves — a log line, and a retry after the crash backoff where instances
// are missing.

import type { Logger } from "../log/mod.ts";
import type { Instance } from "./instance.ts";
import type { WorkerEntry } from "./worker.ts";
import { errorMessage } from "./_env.ts";

/** What {@linkcode startFailed} and {@linkcode watchExit} use of the supervisor. */
export interface CrashHost {
  /** The logger. */
  log(): Logger;
  /** True once the server stops. */
  closing(): boolean;
  /** True once the server stops or the worker is removed. */
  ended(entry: WorkerEntry): boolean;
  /** Brings the missing instances back after the crash backoff (others serve). */
  retryLater(entry: WorkerEntry, error: string): void;
  /** Restarts the whole worker after the crash backoff (none serves). */
  retryAll(entry: WorkerEntry, error: string): void;
  /** Frees the port of an instance whose process group is gone. */
  release(instance: Instance): void;
  /** Now on the crash backoff's clock (how long an instance was up). */
  now(): number;
}

/** Options for {@linkcode startFailed}. */
export interface StartFailedOptions {
  /** Log fields of the start (worker, reason). */
  fields: Record<string, unknown>;
  /** What the supervisor lends. */
  host: CrashHost;
}

/**
 * What a failed start leaves: nothing when the server stops or the worker
 * goes; else a log line and, with fewer instances serving than configured,
 * a retry after the crash backoff. Returns false.
 */
export function startFailed(
  entry: WorkerEntry,
  err: unknown,
  options: StartFailedOptions,
): false {
  const { fields, host } = options;
  const log = host.log();
  const cancelled = host.closing();
  const error = cancelled
    ? "Start cancelled: the server is stopping"
    : errorMessage(err);
  if (cancelled || host.ended(entry)) {
    log.info("worker start cancelled", fields);
    return false;
  }
  log.error("worker start failed", {
    ...fields,
    error,
    kept_old: entry.active.length > 0,
  });
  if (entry.active.length === 0) {
    host.retryAll(entry, error);
  } else if (entry.active.length < entry.target) {
    host.retryLater(entry, error);
  } else entry.noteError(error);
  return false;
}

/** Options for {@linkcode watchExit}. */
export interface WatchExitOptions {
  /** The instance just put in service. */
  instance: Instance;
  /** What the supervisor lends. */
  host: CrashHost;
}

/**
 * Watches an instance put in service: when it exits while still serving,
 * it leaves the worker, the crash is logged and the instance (or the whole
 * worker) comes back after the backoff; what it left in its group is killed
 * and its port freed.
 */
export function watchExit(
  entry: WorkerEntry,
  options: WatchExitOptions,
): void {
  const { instance, host } = options;
  const healthyAt = host.now();
  instance.exited.then(async (status) => {
    if (!entry.active.includes(instance)) return;
    entry.active = entry.active.filter((i) => i !== instance);
    entry.retiredRequests += instance.requests;
    entry.instanceEnded(host.now() - healthyAt);
    const error = `Exited unexpectedly with ${
      status.signal ? `signal ${status.signal}` : `code ${status.code}`
    }`;
    host.log().warn("worker crashed", {
      worker: entry.name,
      pid: instance.pid,
      error,
    });
    if (!host.ended(entry)) {
      if (entry.running) {
        // The replace under way brings new instances, or arms the retry if it fails.
        entry.transition({ status: "unhealthy", error });
      } else if (entry.active.length > 0) {
        // The others serve on; this one alone comes back, after the backoff.
        host.retryLater(entry, error);
      } else {
        host.retryAll(entry, error);
      }
    }
    // What it left in its group dies at once; its port is free once the group is gone.
    await instance.stop(0);
    host.release(instance);
  });
}
