/**
 * Prometheus metrics (`GET /metrics`) and the per-worker series the admin
 * dashboard draws.
 *
 * @module
 */
export * from "./registry.ts";
export * from "./series.ts";
export * from "./server_metrics.ts";
export * from "./meter.ts";
export * from "./process_stats.ts";
