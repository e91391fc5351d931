/**
 * The supervisor: worker processes, the port pool, health probes and the one
 * replace path used by every restart.
 *
 * @module
 */
export * from "./instance.ts";
export * from "./port_pool.ts";
export * from "./supervisor.ts";
export * from "./worker.ts";
