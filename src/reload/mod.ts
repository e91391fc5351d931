/**
 * The prod reload check: scanning what changed on disk since the last SIGHUP;
 * the change pipeline (`src/changes/`) restarts exactly that.
 *
 * @module
 */
export * from "./check.ts";
export * from "./coalescer.ts";
export * from "./mtimes.ts";
export * from "./scan.ts";
