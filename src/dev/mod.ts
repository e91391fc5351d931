/**
 * Dev mode: the file watcher, rebuilds, and browser live reload.
 *
 * @module
 */
export * from "./hooks.ts";
export * from "./livereload.ts";
export * from "./watcher.ts";
