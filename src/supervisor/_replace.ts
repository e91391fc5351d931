// Folder-private: one run of a worker's replace queue (SPEC §5) — a missing
// binary, every instance at once, or the rolling replace — kept apart from
// the supervisor, which lends it what it needs.

import type { Instance } from "./instance.ts";
import type { ReplaceScope, RestartReason, WorkerEntry } from "./worker.ts";
import { fileExists } from "./_env.ts";
import { type RollHost, rollInstances } from "./_rolling.ts";

/** What a replace uses of the supervisor: the rolling replace's needs, and the route table. */
export interface ReplaceHost extends RollHost {
  /** Puts the worker's current view (route, instances) in the route table. */
  publish(entry: WorkerEntry): void;
}

/** Options for {@linkcode replaceOnce}. */
export interface ReplaceOptions {
  /** Why the worker is replaced; `start` for its first start. */
  reason: RestartReason | "start";
  /** Which instances to replace: every one, or those in the set. */
  scope: ReplaceScope;
  /** What the supervisor lends. */
  host: ReplaceHost;
}

/**
 * One replace of a worker: nothing when its binary is missing (the error is
 * noted, a retry armed where instances are missing); every instance at once
 * on a first start, with nothing serving, on a new route or with one
 * instance; else the rolling replace.
 *
 * @returns true when new instances serve.
 */
export async function replaceOnce(
  entry: WorkerEntry,
  options: ReplaceOptions,
): Promise<boolean> {
  const { reason, scope, host } = options;
  if (host.ended(entry)) return false;
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
      host.retryLater(entry, error);
    } else entry.noteError(error);
    host.log().error("worker cannot start", { ...fields, error });
    return false;
  }
  // All at once: a first start, a worker with nothing serving, a new route
  // (old and new instances cannot share a route), and one instance.
  const whole = reason === "start" || entry.active.length === 0 ||
    spec.route !== entry.route ||
    (entry.target === 1 && (scope === "all" || scope.size > 0));
  return whole
    ? await replaceAll(entry, reason, host)
    : await rollInstances(entry, { reason, scope, host });
}

/** Starts every instance of the worker, then switches them all in at once. */
async function replaceAll(
  entry: WorkerEntry,
  reason: RestartReason | "start",
  host: ReplaceHost,
): Promise<boolean> {
  const log = host.log();
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
    log.info("worker restarting", fields);
  }
  const started = Date.now();
  // The server stopping, or this worker being removed, ends a start at once.
  const signal = host.signal(entry);
  let fresh: Instance[];
  try {
    fresh = await host.startHealthy(entry, entry.target, signal);
  } catch (err) {
    return host.startFailed(entry, fields, err);
  }
  if (host.ended(entry)) {
    await Promise.all(
      fresh.map((instance) => host.retire(entry, instance, 0)),
    );
    return false;
  }
  const old = entry.serve(fresh);
  // The route may have changed with the spec: it switches now, with the new instance.
  host.publish(entry);
  for (const instance of fresh) host.watchExit(entry, instance);
  log.info(reason === "start" ? "worker started" : "worker replaced", {
    ...fields,
    pid: fresh.map((i) => i.pid).join(","),
    port: fresh.map((i) => i.port).join(","),
    old_pid: old.length ? old.map((i) => i.pid).join(",") : undefined,
    ms: Date.now() - started,
  });
  for (const instance of old) {
    host.retire(entry, instance, host.restartDelayMs());
  }
  return true;
}
