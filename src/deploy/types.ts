import type { Change } from "./_release.ts";

/** Where a host stands after a deploy or rollback. */
export type HostState =
  | "deployed"
  | "rolled back"
  | "failed"
  | "untouched"
  | "would change";

/** What happened on one host. */
export interface HostReport {
  host: string;
  state: HostState;
  /** Why it failed (or why its rollback failed). */
  reason?: string;
  /** Files changed (or, for a dry run, that would change). */
  changes: Change[];
  /** True when the server was told to reload. */
  reloaded: boolean;
}
