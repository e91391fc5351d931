/** The outcome of {@linkcode parseRange}. */
export type ByteRange =
  | { kind: "none" }
  | { kind: "range"; start: number; end: number }
  | { kind: "unsatisfiable" };

const SINGLE_RE = /^(\d*)-(\d*)$/;

/**
 * Parses a `Range` header against a representation of `size` bytes (RFC 9110
 * §14.1.2). Only one `bytes` range is honoured: a multi-range or malformed
 * header, or another unit, answers `none` (serve the whole file, as the RFC
 * allows). `end` is inclusive.
 */
export function parseRange(header: string | null, size: number): ByteRange {
  if (header === null) return { kind: "none" };
  const eq = header.indexOf("=");
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== "bytes") {
    return { kind: "none" };
  }
  const spec = header.slice(eq + 1).trim();
  const match = SINGLE_RE.exec(spec);
  if (!match) return { kind: "none" };
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return { kind: "none" };
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "range", start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== "" && Number(last) < start) return { kind: "none" };
  if (start >= size) return { kind: "unsatisfiable" };
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  return { kind: "range", start, end };
}
