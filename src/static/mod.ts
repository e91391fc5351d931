/**
 * Static files: `GET|HEAD /static/{worker}/{path}` served from
 * `workers/{worker}/public/{path}`, from a validated memory cache, compressed
 * per `Accept-Encoding`, with RFC 9110 conditionals, byte ranges and traversal
 * checks that hold after symlinks are resolved (SPEC §8). Also the one MIME
 * table of tqserver.
 *
 * @module
 */
export * from "./static.ts";
export type { StaticCacheStats } from "./cache.ts";
export { contentTypeFor, DEFAULT_CONTENT_TYPE } from "./mime.ts";
