// Folder-private: what a new spec of a running worker asks for — nothing, a
// new instance count alone, or a replace (its route, settings, kind or
// binary changed).

import type { WorkerSpec } from "../config/mod.ts";

/** What a new spec changes of a running worker. */
export type SpecChange = "none" | "instances" | "replace";

/**
 * Compares a worker's spec with its new one: `replace` when the route, a
 * setting other than `instances`, the kind or the binary changed;
 * `instances` when only the instance count did; else `none`.
 */
export function specChange(current: WorkerSpec, next: WorkerSpec): SpecChange {
  const key = (s: WorkerSpec) =>
    JSON.stringify([
      s.route,
      { ...s.settings, instances: 0 },
      s.kind,
      s.binPath,
    ]);
  if (key(current) !== key(next)) return "replace";
  return current.settings.instances !== next.settings.instances
    ? "instances"
    : "none";
}
