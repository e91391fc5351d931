/**
 * The one small structured logger used by every tqserver module, and the
 * files behind the server's log.
 *
 * @module
 */
export * from "./logger.ts";
export * from "./file_sink.ts";
export * from "./server_log.ts";
export * from "./access_log.ts";
