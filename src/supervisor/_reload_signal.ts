// Folder-private: a `private/` change told to a worker by the signal its
// instances announced (`X-TQ-Reload`), instead of a replace.

import type { Logger } from "../log/mod.ts";
import type { WorkerEntry } from "./worker.ts";

/**
 * Sends every serving instance the reload signal they all announced.
 *
 * @returns `"signalled"`; `"none"` when no instance serves or they did not
 * all announce the same signal; `"failed"` when a signal could not be sent
 * (logged; the instances before it got theirs).
 */
export function signalReload(
  entry: WorkerEntry,
  logger: Logger,
): "signalled" | "none" | "failed" {
  const active = entry.active;
  const signal = active[0]?.reloadSignal;
  if (
    active.length === 0 || !signal ||
    !active.every((i) => i.reloadSignal === signal)
  ) return "none";
  for (const instance of active) {
    try {
      instance.signal(signal);
    } catch (err) {
      logger.warn("reload signal failed", {
        worker: entry.name,
        pid: instance.pid,
        error: err,
      });
      return "failed";
    }
    logger.info("worker signalled", {
      worker: entry.name,
      pid: instance.pid,
      signal,
      reason: "private-changed",
    });
  }
  return "signalled";
}
