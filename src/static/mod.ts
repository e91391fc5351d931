/**
 * Static files: `GET|HEAD /static/{worker}/{path}` served from
 * `workers/{worker}/public/{path}`, with caching headers, byte ranges and
 * traversal checks that hold after symlinks are resolved (SPEC §8).
 *
 * @module
 */
export * from "./static.ts";
