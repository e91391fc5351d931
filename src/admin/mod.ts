/**
 * The admin listener: dashboard, status, reload and metrics.
 *
 * @module
 */
export * from "./admin.ts";
