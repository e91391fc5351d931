import type { BuildError } from "./_errors.ts";

/** A TypeScript worker to build. */
export interface BuildTarget {
  /** Worker name (the folder name). */
  name: string;
  /** Absolute path of `src/main.ts`. */
  entry: string;
  /** Absolute path of `bin/{name}`. */
  binPath: string;
  /** Absolute path of the worker folder; deno runs there. */
  dir: string;
}

/** Outcome of one build. */
export interface BuildResult {
  /** Worker name. */
  name: string;
  /** `built` wrote a new binary; `fresh` found it up to date; `failed` left the old one untouched. */
  status: "built" | "fresh" | "failed";
  /** Wall time of the build (or of the freshness check), in milliseconds. */
  ms: number;
  /** Why it failed, located in the source when deno said where. */
  error?: BuildError;
}

/** Output format of a build. */
export type BuildFormat = "bundle" | "compile";

/** One line for logs and `last_error`: `Build failed at file:line:column: first line of the message`. */
export function describeBuildError(error: BuildError | undefined): string {
  if (!error) return "Build failed";
  const where = error.file
    ? ` at ${error.file}${
      error.line
        ? `:${error.line}${error.column ? `:${error.column}` : ""}`
        : ""
    }`
    : "";
  return `Build failed${where}: ${error.message.split("\n")[0]}`;
}
