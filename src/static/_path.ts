import { rawPathOf } from "../routes/mod.ts";

export { rawPathOf };
/** A worker folder name (SPEC §2). */
export const WORKER_NAME_RE = /^[a-z0-9][a-z0-9_-]*$/;

/** The outcome of {@linkcode parseStaticPath}. */
export type StaticPath =
  | {
    ok: true;
    /** The worker folder name, already checked against {@linkcode WORKER_NAME_RE}. */
    worker: string;
    /** Decoded, normalised path segments below `public/` (never `.`, `..` or empty). */
    segments: string[];
    /** True when the raw path ends with `/` (a directory request). */
    trailingSlash: boolean;
  }
  | { ok: false; status: 400 | 404; reason: string };

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();
// Separators, NUL and other control characters have no business in a file name
// taken from a URL: `%2f` would smuggle a separator past the segment split,
// `\` is a separator on Windows, NUL truncates paths in C APIs.
// deno-lint-ignore no-control-regex
const FORBIDDEN_RE = /[/\\\x00-\x1f\x7f]/;

function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Percent-decodes one path segment exactly once. Returns `null` for a
 * malformed escape (`%`, `%4`, `%zz`) or bytes that are not UTF-8.
 */
export function decodeSegment(raw: string): string | null {
  if (!raw.includes("%")) return raw;
  const src = encoder.encode(raw);
  const out = new Uint8Array(src.length);
  let length = 0;
  for (let i = 0; i < src.length; i++) {
    const byte = src[i]!;
    if (byte !== 0x25) {
      out[length++] = byte;
      continue;
    }
    const high = hexValue(src[i + 1]);
    const low = hexValue(src[i + 2]);
    if (high < 0 || low < 0) return null;
    out[length++] = high * 16 + low;
    i += 2;
  }
  try {
    return decoder.decode(out.subarray(0, length));
  } catch {
    // Invalid UTF-8 is a malformed request, answered with 400 by the caller.
    return null;
  }
}

/**
 * Splits a raw request path `{prefix}/{worker}/{path}` into a worker name and
 * safe path segments. Each segment is decoded once; the decoded text is taken
 * literally (`%252e` stays `%2e`). Empty and `.` segments are dropped; `..`,
 * separators, NUL and control characters are rejected with 400; dot files
 * (`.env`, `.git`) and bad or missing worker names answer 404.
 *
 * @param rawPath The raw path from {@linkcode rawPathOf}.
 * @param prefix The URL prefix without a trailing slash (`/static`).
 */
export function parseStaticPath(rawPath: string, prefix: string): StaticPath {
  if (!rawPath.startsWith(prefix + "/")) {
    return { ok: false, status: 404, reason: "outside prefix" };
  }
  const rest = rawPath.slice(prefix.length + 1);
  const decoded: string[] = [];
  for (const raw of rest.split("/")) {
    const segment = decodeSegment(raw);
    if (segment === null) {
      return { ok: false, status: 400, reason: "malformed percent-encoding" };
    }
    if (segment === ".." || FORBIDDEN_RE.test(segment)) {
      return { ok: false, status: 400, reason: "forbidden path segment" };
    }
    decoded.push(segment);
  }
  const [worker = "", ...tail] = decoded;
  if (!WORKER_NAME_RE.test(worker)) {
    return { ok: false, status: 404, reason: "invalid worker name" };
  }
  const segments: string[] = [];
  for (const segment of tail) {
    if (segment === "" || segment === ".") continue;
    if (segment.startsWith(".")) {
      return { ok: false, status: 404, reason: "dot file" };
    }
    segments.push(segment);
  }
  return {
    ok: true,
    worker,
    segments,
    trailingSlash: rest.endsWith("/"),
  };
}
