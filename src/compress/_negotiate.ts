/** A content coding tqserver produces. */
export type Encoding = "br" | "gzip";

/** The `Content-Encoding` value of each coding, and its ETag suffix. */
export const ETAG_SUFFIX: Readonly<Record<Encoding, string>> = {
  br: "-br",
  gzip: "-gz",
};

/** Server preference when the client weighs codings equally: br compresses better. */
const PREFERENCE: readonly Encoding[] = ["br", "gzip"];

type Weights = Readonly<Record<Encoding, number>>;

const memo = new Map<string, Weights>();
const MEMO_MAX = 256;

function parseQ(params: string[]): number {
  for (const param of params) {
    const eq = param.indexOf("=");
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== "q") continue;
    const q = Number(param.slice(eq + 1).trim());
    return Number.isFinite(q) && q >= 0 && q <= 1 ? q : 0;
  }
  return 1;
}

function weightsOf(header: string): Weights {
  let weights = memo.get(header);
  if (weights) return weights;
  const listed = new Map<string, number>();
  for (const part of header.split(",")) {
    const [name = "", ...params] = part.split(";");
    const coding = name.trim().toLowerCase();
    if (coding) {
      listed.set(coding === "x-gzip" ? "gzip" : coding, parseQ(params));
    }
  }
  const star = listed.get("*") ?? 0;
  weights = { br: listed.get("br") ?? star, gzip: listed.get("gzip") ?? star };
  // Browsers send a handful of distinct headers; the bound stops a client growing it.
  if (memo.size >= MEMO_MAX) memo.clear();
  memo.set(header, weights);
  return weights;
}

/**
 * Picks the coding to send for an `Accept-Encoding` header (RFC 9110
 * §12.5.3): the highest `q` among `offered`, br before gzip on a tie; `null`
 * means identity (no header, an empty one, or nothing acceptable offered).
 * `*` stands for any coding not listed; `q=0` refuses one.
 *
 * @param offered The codings available for this answer, e.g. only `gzip`
 *   when just a `.gz` file lies beside the original.
 */
export function negotiateEncoding(
  header: string | null,
  offered: readonly Encoding[] = PREFERENCE,
): Encoding | null {
  if (header === null || offered.length === 0) return null;
  const weights = weightsOf(header);
  let best: Encoding | null = null;
  let bestQ = 0;
  for (const coding of PREFERENCE) {
    if (!offered.includes(coding)) continue;
    if (weights[coding] > bestQ) {
      best = coding;
      bestQ = weights[coding];
    }
  }
  return best;
}

/**
 * Returns a predicate for Content-Types: each pattern is a media type
 * (`text/html`) or has one `*` (`text/*`, `application/*+json`). Parameters
 * (`; charset=utf-8`) and case are ignored.
 *
 * @throws {TypeError} When a pattern is not `type/subtype` or has more than one `*`.
 */
export function createTypeMatcher(
  patterns: readonly string[],
): (contentType: string | null) => boolean {
  const exact = new Set<string>();
  const wild: [string, string][] = [];
  for (const raw of patterns) {
    const pattern = raw.trim().toLowerCase();
    const stars = pattern.split("*").length - 1;
    if (!/^[^/\s]+\/[^/\s]+$/.test(pattern) || stars > 1) {
      throw new TypeError(
        `Content type pattern "${raw}" must be "type/subtype" with at most one "*"`,
      );
    }
    if (stars === 0) exact.add(pattern);
    else {
      const star = pattern.indexOf("*");
      wild.push([pattern.slice(0, star), pattern.slice(star + 1)]);
    }
  }
  return (contentType) => {
    if (!contentType) return false;
    const semi = contentType.indexOf(";");
    const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim()
      .toLowerCase();
    if (exact.has(type)) return true;
    return wild.some(([head, tail]) =>
      type.length >= head.length + tail.length && type.startsWith(head) &&
      type.endsWith(tail)
    );
  };
}
