const MAX_SHEBANG = 127;
const SAFE = /^[A-Za-z0-9_\-=.,/:@+]+$/;

/**
 * The first lines of a bundled worker: they make the file an executable that
 * runs itself with `deno run`. `#!/usr/bin/env -S deno run ...` when the line
 * is short and needs no quoting; otherwise a shell/JavaScript polyglot (the
 * kernel cuts long `#!` lines: 127 bytes on older Linux, 255 on newer).
 */
export function launcherHeader(
  flags: string[],
  configPath?: string,
): string {
  const args = launcherArgs(flags, configPath);
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

/**
 * `deno run` and its flags as the launcher runs a bundle: `--no-config` for a
 * self-contained bundle, `--config=FILE` for a dev bundle whose packages are
 * resolved by deno through the project's import map and lock file.
 */
export function launcherArgs(flags: string[], configPath?: string): string[] {
  return [
    "deno",
    "run",
    configPath ? `--config=${configPath}` : "--no-config",
    ...flags,
  ];
}

/** `arg` quoted for sh when it needs it. */
export function shellQuote(arg: string): string {
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
