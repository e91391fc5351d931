// Folder-private: a worker's replace queue — requests made while a replace
// runs coalesce into one more run after it.

import type { ReplaceScope, RestartReason, WorkerEntry } from "./worker.ts";

/** Options for {@linkcode enqueue}. */
export interface EnqueueOptions {
  /** Which instances to replace. Default `"all"`. */
  scope?: ReplaceScope;
  /** Runs one replace; true when new instances serve. */
  run(reason: RestartReason | "start", scope: ReplaceScope): Promise<boolean>;
  /** True when some but not all instances serve and nothing brings the others back. */
  short(entry: WorkerEntry): boolean;
}

/**
 * Queues a replace of `scope` and runs the queue unless it runs already. A
 * replace of every instance takes the reason of the last request; narrower
 * requests add their instances to it. An instance that died after a run last
 * looked is restarted alone (`crashed`).
 *
 * @returns What the last run of the queue returned.
 */
export function enqueue(
  entry: WorkerEntry,
  reason: RestartReason | "start",
  options: EnqueueOptions,
): Promise<boolean> {
  const { scope = "all", run, short } = options;
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
        ok = await run(next, nextScope);
        if (entry.queued === undefined && short(entry)) {
          entry.queued = "crashed";
          entry.queuedScope = new Set();
        }
      }
      return ok;
    })().finally(() => entry.running = undefined);
  }
  return entry.running;
}
