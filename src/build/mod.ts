/**
 * The builder of TypeScript workers: `deno bundle` or `deno compile` into
 * `bin/{name}`, incremental and atomic.
 *
 * @module
 */
export * from "./builder.ts";
export * from "./emitter.ts";
export * from "./module_graph.ts";
export * from "./target.ts";
