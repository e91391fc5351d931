const MAX_SHEBANG = 127;
const SAFE = /^[A-Za-z0-9_\-=.,/:@+]+$/;

/**
 * The first lines of a bundled worker: they make the file an executable that
 * runs itself with `deno run`. `#!/usr/bin/env -S deno run ...` when the line
 * is short and needs no quoting; otherwise a shell/JavaScript polyglot (the
 * kernel cuts long `#!` lines: 127 bytes on older Linux, 255 on newer).
 */
export function launcherHeader(flags: string[]): string {
  const args = ["deno", "run", "--no-config", ...flags];
  const line = `#!/usr/bin/env -S ${args.join(" ")}`;
  if (
    args.every((arg) => SAFE.test(arg)) &&
    new TextEncoder().encode(line).length <= MAX_SHEBANG
  ) {
    return `${line}\n`;
  }
  // `//bin/true` is /bin/true to sh and a comment to JavaScript.
  return `#!/bin/sh\n//bin/true; exec ${
    args.map(shellQuote).join(" ")
  } "$0" "$@"\n`;
}

function shellQuote(arg: string): string {
  return SAFE.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * The `unstable` features of a deno.json(c) text as `--unstable-{name}`
 * flags, so a bundle run with `--no-config` gets what `deno run` from the
 * project would.
 */
export function unstableFlags(configText: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(configText);
  } catch {
    // deno.jsonc: drop comments and trailing commas, then try again.
    try {
      parsed = JSON.parse(
        configText
          .replace(/("(?:[^"\\]|\\.)*")|\/\/[^\n]*|\/\*[\s\S]*?\*\//g, "$1")
          .replace(/,(\s*[}\]])/g, "$1"),
      );
    } catch {
      return [];
    }
  }
  const unstable = (parsed as { unstable?: unknown } | null)?.unstable;
  if (!Array.isArray(unstable)) return [];
  return unstable
    .filter((name): name is string =>
      typeof name === "string" && /^[a-z0-9-]+$/.test(name)
    )
    .map((name) => `--unstable-${name}`);
}
