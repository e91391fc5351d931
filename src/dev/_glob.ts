/**
 * Compiles a root-relative glob into a RegExp: `**` spans folders, `*` and `?`
 * stay within one path segment, `**\/` at the start also matches nothing.
 */
export function globToRegExp(glob: string): RegExp {
  let out = "^";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      if (glob[i + 2] === "/") {
        out += "(?:.*/)?";
        i += 2;
      } else {
        out += ".*";
        i += 1;
      }
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(out + "$");
}

/** True when `path` (root-relative, `/`-separated) matches any of the globs. */
export function matchesAny(path: string, globs: readonly RegExp[]): boolean {
  return globs.some((re) => re.test(path));
}
