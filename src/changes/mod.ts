/**
 * The change pipeline, for dev file events and prod's SIGHUP scan alike:
 * {@linkcode classifyChanges} decides what changed paths trigger (SPEC §6),
 * {@linkcode applyChanges} carries it out.
 *
 * @module
 */
export * from "./apply.ts";
export * from "./classify.ts";
export * from "./report.ts";
