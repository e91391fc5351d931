/**
 * The prod reload check: what changed on disk since the last SIGHUP, and
 * restarting exactly that.
 *
 * @module
 */
export * from "./check.ts";
export * from "./coalescer.ts";
export * from "./mtimes.ts";
