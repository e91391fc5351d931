/**
 * The one small structured logger used by every tqserver module.
 *
 * @module
 */
export * from "./logger.ts";
export * from "./file_sink.ts";
