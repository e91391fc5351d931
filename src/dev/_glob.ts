import { matchesGlob } from "node:path";

/**
 * True when `path` (root-relative, `/`-separated) matches any of the globs.
 * The globs are `node:path` `matchesGlob` globs: `**` spans folders, `*` and
 * `?` stay within one segment, braces (`*.{ts,tsx}`) and classes (`[ab]`)
 * work, and `*` does not match a leading dot.
 */
export function matchesAny(path: string, globs: readonly string[]): boolean {
  return globs.some((glob) => matchesGlob(path, glob));
}
