/**
 * The route table: the one structure the supervisor writes and the proxy reads.
 *
 * @module
 */
export * from "./route_table.ts";
