/**
 * The builder of TypeScript workers: `deno bundle` or `deno compile` into
 * `bin/{name}`, incremental and atomic.
 *
 * @module
 */
export * from "./builder.ts";
