/**
 * The `tqserver` command line.
 *
 * @module
 */
export * from "./args.ts";
export * from "./main.ts";
export * from "./signals.ts";
