/**
 * The admin listener: dashboard, status, events, live stream, reload,
 * per-worker restart and metrics (SPEC §10).
 *
 * @module
 */
export * from "./admin.ts";
export * from "./events.ts";
export * from "./observer.ts";
