/**
 * The builders of workers, incremental and atomic: TypeScript with `deno
 * bundle` or `deno compile`, Go with `go build`, into each worker's
 * `binaries.path` (default `bin/{name}`).
 *
 * @module
 */
export * from "./builder.ts";
export * from "./emitter.ts";
export * from "./module_graph.ts";
export * from "./target.ts";
export * from "./go.ts";
