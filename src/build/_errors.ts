/** A build problem, located in a source file when deno said where. */
export interface BuildError {
  /** What went wrong, without colours (may include deno's code frame). */
  message: string;
  /** Absolute path of the file, when known. */
  file?: string;
  /** 1-based line, when known. */
  line?: number;
  /** 1-based column, when known. */
  column?: number;
}

// deno colours its output unless NO_COLOR is set; strip it either way.
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** Lines of deno's stderr that say nothing about the source. */
const NOISE = [
  /deno bundle\S* is experimental/,
  /^error: bundling failed$/,
  /^Stack backtrace:$/,
  /^\s+\d+: <unknown>$/,
  /^(Check|Compile|Download|Bundle)\s/,
];

const LOCATION = /^\s*at (file:\/\/\S+?):(\d+):(\d+)\s*$/m;

/**
 * Turns deno's stderr after a failed `deno bundle` / `deno compile` into a
 * {@linkcode BuildError}: the message without colours or backtrace noise, and
 * the first `at file:///...:line:column` as file, line and column.
 */
export function parseBuildError(stderr: string): BuildError {
  const lines = stderr.replace(ANSI, "").split("\n")
    .filter((line) => !NOISE.some((re) => re.test(line)));
  const text = lines.join("\n");
  const message = lines
    .filter((line) => !LOCATION.test(line))
    .map((line) => line.replace(/^error: /, ""))
    .join("\n")
    .trim() || "Build failed without a message from deno";
  const at = LOCATION.exec(text);
  if (!at) return { message };
  let file = at[1]!;
  try {
    file = decodeURIComponent(new URL(file).pathname);
  } catch {
    // Not a URL after all: the text is the best name there is.
  }
  return { message, file, line: Number(at[2]), column: Number(at[3]) };
}

/**
 * Recognises `deno compile` failing to get its runtime (`denort`), which it
 * downloads unless `DENORT_BIN` names a local copy, and explains the way out.
 * Returns undefined for any other failure.
 */
export function compileRuntimeError(stderr: string): BuildError | undefined {
  const text = stderr.replace(ANSI, "");
  const missing = /Could not find denort at '([^']*)'/.exec(text);
  if (missing) {
    return {
      message: `DENORT_BIN "${missing[1]}" does not exist: point it at a ` +
        `denort binary of this deno version, or unset it so deno compile ` +
        `downloads the runtime`,
    };
  }
  if (!/Setting up base binary|dl\.deno\.land|denort/.test(text)) {
    return undefined;
  }
  const cause = /^\s*\d+: (.*(?:error sending request|download|denort).*)$/m
    .exec(text)?.[1] ?? text.trim().split("\n")[0] ?? "";
  return {
    message: "deno compile could not get its runtime (denort): it downloads " +
      "it from dl.deno.land unless DENORT_BIN names a local denort binary. " +
      "Set DENORT_BIN=/path/to/denort, build where the download works, or " +
      `use build format "bundle" (cause: ${cause.trim()})`,
  };
}
