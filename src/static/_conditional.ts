// Folder-private: RFC 9110 §13 preconditions for a file's representation.

/** What the preconditions decided. */
export type Precondition = "proceed" | "not-modified" | "failed";

function opaque(tag: string): string {
  const t = tag.trim();
  return t.startsWith("W/") ? t.slice(2) : t;
}

function listMatches(
  header: string,
  tags: readonly string[],
  weak: boolean,
): boolean {
  if (header.trim() === "*") return true;
  for (const raw of header.split(",")) {
    const tag = raw.trim();
    if (!tag) continue;
    // Strong comparison: neither side may be weak. Ours never are.
    if (!weak && tag.startsWith("W/")) continue;
    const candidate = weak ? opaque(tag) : tag;
    if (tags.includes(candidate)) return true;
  }
  return false;
}

/** Seconds since the epoch of an HTTP date, or NaN. */
function httpSeconds(value: string): number {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? NaN : Math.floor(ms / 1000);
}

/** Options for {@linkcode evaluatePreconditions}: the selected representation. */
export interface PreconditionOptions {
  /** Its ETag, for `If-None-Match`. */
  etag: string;
  /** The file's ETags in every encoding, for `If-Match`. */
  matchTags: readonly string[];
  /** The file's mtime in whole seconds, for the date headers. */
  mtimeSeconds: number;
}

/**
 * Evaluates the preconditions in RFC 9110 §13.2.2's order for a GET or HEAD:
 * `If-Match` (strong, against any of `matchTags`: the file's version in every
 * encoding), else `If-Unmodified-Since`, fail with 412; then `If-None-Match`
 * (weak, against the selected representation's `etag`), else
 * `If-Modified-Since`, answer 304. A date that does not parse is ignored; a
 * future `If-Modified-Since` is honoured (the file is older than it).
 */
export function evaluatePreconditions(
  headers: Headers,
  options: PreconditionOptions,
): Precondition {
  const { etag, matchTags, mtimeSeconds } = options;
  const ifMatch = headers.get("if-match");
  if (ifMatch !== null) {
    if (!listMatches(ifMatch, matchTags, false)) return "failed";
  } else {
    const ius = headers.get("if-unmodified-since");
    if (ius !== null) {
      const since = httpSeconds(ius);
      if (!Number.isNaN(since) && mtimeSeconds > since) return "failed";
    }
  }
  const ifNoneMatch = headers.get("if-none-match");
  if (ifNoneMatch !== null) {
    return listMatches(ifNoneMatch, [etag], true) ? "not-modified" : "proceed";
  }
  const ims = headers.get("if-modified-since");
  if (ims !== null) {
    const since = httpSeconds(ims);
    if (!Number.isNaN(since) && mtimeSeconds <= since) return "not-modified";
  }
  return "proceed";
}

/** Options for {@linkcode ifRangeHolds}: the representation the range is of. */
export interface IfRangeOptions {
  /** Its ETag (compared strongly). */
  etag: string;
  /** Its `Last-Modified`. */
  lastModified: string;
}

/** True when a `Range` may be honoured under `If-Range` (RFC 9110 §13.1.5): `value` is the header or null. */
export function ifRangeHolds(
  value: string | null,
  options: IfRangeOptions,
): boolean {
  const { etag, lastModified } = options;
  if (value === null) return true;
  const trimmed = value.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith("W/")) {
    return trimmed === etag; // strong comparison; a weak tag never matches
  }
  return httpSeconds(trimmed) === httpSeconds(lastModified);
}
