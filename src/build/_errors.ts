/** A build problem located in a source file where deno said where. */
export interface BuildError {
  /** Compiler message, without colours. */
  message: string;
  /** Absolute path of the file, when known. */
  file?: string;
  /** 1-based line. */
  line?: number;
  /** 1-based column. */
  column?: number;
}

// deno prints colours even to pipes when asked by the environment.
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** Parses deno's stderr after a failed `deno bundle` / `deno compile` into a {@linkcode BuildError}. */
export function parseBuildError(stderr: string): BuildError {
  const text = stderr.replace(ANSI, "")
    .split("\n")
    .filter((l) =>
      !/^⚠️|deno bundle.*experimental|^Stack backtrace|^\s+\d+: <unknown>|^error: bundling failed/
        .test(l)
    )
    .join("\n")
    .trim();
  const message = text.replace(/^error: /gm, "").trim() || "Build failed";
  const at = /at (file:\/\/[^\s:]+(?::[^\s:]+)*?):(\d+):(\d+)/.exec(text);
  if (!at) return { message };
  let file = at[1]!;
  try {
    file = decodeURIComponent(new URL(file).pathname);
  } catch {
    // Not a URL after all: keep the text.
  }
  return { message, file, line: Number(at[2]), column: Number(at[3]) };
}
