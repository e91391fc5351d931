import type { ChangeSet } from "./classify.ts";
import { applyWatch, type WatchApply } from "./_apply_watch.ts";
import { applyScan, type ScanApply } from "./_apply_scan.ts";

export type {
  BatchTiming,
  EarlyBuild,
  WatchApply,
  WatchHost,
} from "./_apply_watch.ts";
export { targetOf } from "./_apply_watch.ts";
export type { ScanApply, ScanFacts, ScanHost } from "./_apply_scan.ts";

/** How a ChangeSet is carried out: after dev file events, or after a reload check's scan. */
export type ApplyOptions = WatchApply | ScanApply;

/**
 * Carries out a {@linkcode ChangeSet}: the one place that builds, replaces,
 * signals, drops static caches, applies the config, starts and stops workers,
 * restarts the server, and records worker mtimes (through the supervisor).
 *
 * For file events (`source: "watch"`) it resolves once the builds are done;
 * the replaces that follow finish on their own. For a reload check
 * (`source: "scan"`) it resolves when everything is done, `report` filled.
 *
 * @throws {TypeError} When the ChangeSet came from the other source.
 *
 * @example
 * ```ts
 * const changes = classifyChanges(paths, { source: "watch", root, workersDir, workers });
 * await applyChanges(changes, { source: "watch", host, live, timing });
 * ```
 */
export function applyChanges(
  changes: ChangeSet,
  options: ApplyOptions,
): Promise<void> {
  if (options.source !== changes.source) {
    throw new TypeError(
      `A "${changes.source}" ChangeSet cannot be applied as "${options.source}"`,
    );
  }
  return options.source === "watch"
    ? applyWatch(changes, options)
    : applyScan(changes, options);
}
