// Folder-private: the rolling replace of a worker with several instances
// (SPEC §5), kept apart from the supervisor, which lends it what it needs.

import type { Logger } from "../log/mod.ts";
import type { Instance } from "./instance.ts";
import type { ReplaceScope, RestartReason, WorkerEntry } from "./worker.ts";

/** What {@linkcode rollInstances} uses of the supervisor. */
export interface RollHost {
  /** The logger. */
  log(): Logger;
  /** `workers.restart_delay_ms`. */
  restartDelayMs(): number;
  /** Aborts when the server stops or the worker is removed. */
  signal(entry: WorkerEntry): AbortSignal;
  /** True once the server stops or the worker is removed. */
  ended(entry: WorkerEntry): boolean;
  /** Starts `count` instances and waits for their health; throws (after stopping them) when one fails. */
  startHealthy(
    entry: WorkerEntry,
    count: number,
    signal: AbortSignal,
  ): Promise<Instance[]>;
  /** Logs a failed start and arms a retry where one is due; returns false. */
  startFailed(
    entry: WorkerEntry,
    fields: Record<string, unknown>,
    err: unknown,
  ): false;
  /** Drains and stops an instance taken out of service, after `delayMs`. */
  retire(
    entry: WorkerEntry,
    instance: Instance,
    delayMs: number,
  ): Promise<void>;
  /** Restarts an instance put in service alone when it exits. */
  watchExit(entry: WorkerEntry, instance: Instance): void;
  /** Brings the missing instances back after the crash backoff. */
  retryLater(entry: WorkerEntry, error: string): void;
}

/** Options for {@linkcode rollInstances}. */
export interface RollOptions {
  /** Why the instances are replaced (`start` for missing ones at start). */
  reason: RestartReason | "start";
  /** Which instances to replace: every one, or those in the set (empty: only start the missing ones). */
  scope: ReplaceScope;
  /** What the supervisor lends. */
  host: RollHost;
}

/** Resolves when `signal` aborts (never, if it does not); `dispose` drops the listener. */
function aborted(signal: AbortSignal): {
  promise: Promise<void>;
  dispose: () => void;
} {
  let onAbort = () => {};
  const promise = new Promise<void>((resolve) => {
    onAbort = () => resolve();
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  return {
    promise,
    dispose: () => signal.removeEventListener("abort", onAbort),
  };
}

/**
 * The rolling replace of a worker with several instances (SPEC §5): for
 * each instance in `scope`, start one new instance, wait for its health,
 * switch it in where the old one was, then drain and stop the old one
 * before the next, so all but one serve throughout and at most one more
 * process runs than configured. Missing instances (a crash, a higher
 * `instances`) are started first, all at once; extra ones are drained
 * last. A failure keeps the instances not yet replaced serving.
 */
export async function rollInstances(
  entry: WorkerEntry,
  options: RollOptions,
): Promise<boolean> {
  const { reason, scope, host } = options;
  const log = host.log();
  const fields = { worker: entry.name, reason };
  const victims = scope === "all" ? [...entry.active] : [...scope];
  // Those that crashed or were replaced meanwhile are done with.
  const pending = () => victims.filter((i) => entry.active.includes(i));
  const signal = host.signal(entry);
  const started = Date.now();
  const restartDelayMs = host.restartDelayMs();
  // A crashed instance brought back alone is a restart too.
  const restarting = pending().length > 0 ||
    (reason === "crashed" && entry.active.length < entry.target);
  if (restarting) {
    // Counted when tried, as the log shows it (as a replace of every instance).
    if (reason !== "start") {
      entry.restarts++;
      entry.lastRestartReason = reason;
    }
    log.info("worker restarting", {
      ...fields,
      instances: pending().length || entry.target - entry.active.length,
    });
  }
  const fresh: number[] = [];
  const old: number[] = [];
  let replaced = 0;
  /** Step 4 ends before the next step 1 (or the server stopping ends the wait). */
  const drained = async (retired: Promise<void>) => {
    const stop = aborted(signal);
    await Promise.race([retired, stop.promise]);
    stop.dispose();
  };
  // Instances that die as fast as they start end the roll in the crash backoff.
  let budget = 2 * entry.target + victims.length;
  for (;;) {
    if (host.ended(entry)) return false;
    const next = pending()[0];
    const missing = entry.target - entry.active.length;
    if (next === undefined && missing <= 0) break;
    if (next && missing < 0) {
      // Fewer instances asked for: one to be replaced just goes.
      entry.active = entry.active.filter((i) => i !== next);
      old.push(next.pid);
      await drained(host.retire(entry, next, restartDelayMs));
      continue;
    }
    const count = missing > 0 ? missing : 1;
    if ((budget -= count) < 0) {
      const error =
        `Instances exited as fast as they started (${fresh.length} started)`;
      log.error("worker start failed", { ...fields, error });
      host.retryLater(entry, error);
      return false;
    }
    let batch: Instance[];
    try {
      batch = await host.startHealthy(entry, count, signal);
    } catch (err) {
      return host.startFailed(entry, fields, err);
    }
    if (host.ended(entry)) {
      await Promise.all(
        batch.map((instance) => host.retire(entry, instance, 0)),
      );
      return false;
    }
    // One that exited meanwhile is already gone: the new one takes its place.
    const victim = missing > 0 || !next || !entry.active.includes(next)
      ? undefined
      : next;
    for (const instance of batch) {
      entry.swapIn(instance, victim);
      host.watchExit(entry, instance);
      fresh.push(instance.pid);
    }
    if (!victim) continue;
    replaced++;
    old.push(victim.pid);
    log.info("worker instance replaced", {
      ...fields,
      pid: batch[0]!.pid,
      port: batch[0]!.port,
      old_pid: victim.pid,
    });
    const retired = host.retire(entry, victim, restartDelayMs);
    if (pending().length > 0 || entry.active.length < entry.target) {
      await drained(retired);
    }
  }
  // Fewer instances asked for: the last ones drain and stop.
  while (entry.active.length > entry.target) {
    const extra = entry.active.at(-1)!;
    entry.active = entry.active.slice(0, -1);
    old.push(extra.pid);
    host.retire(entry, extra, restartDelayMs);
  }
  if (fresh.length === 0 && old.length === 0) {
    entry.settle();
    return true;
  }
  const restarted = replaced > 0 ||
    (reason === "crashed" && fresh.length > 0);
  entry.settle();
  log.info(restarted ? "worker replaced" : "worker scaled", {
    ...fields,
    pid: entry.active.map((i) => i.pid).join(","),
    port: entry.active.map((i) => i.port).join(","),
    old_pid: old.length ? old.join(",") : undefined,
    started_pid: fresh.join(","),
    ms: Date.now() - started,
  });
  return true;
}
