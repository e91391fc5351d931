/**
 * Hop-by-hop header fields: they describe one connection, not the message, so
 * a proxy must not forward them (RFC 9110 §7.6.1). `Keep-Alive` and
 * `Proxy-Connection` are the legacy HTTP/1.0 fields §7.6.1 tells proxies to
 * drop as well; any field the `Connection` header names is removed too.
 */
export const HOP_BY_HOP: readonly string[] = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

const HOP_SET: ReadonlySet<string> = new Set(HOP_BY_HOP);

/** Request fields that say who the client is; only a trusted peer may send them. */
const FORWARDING: ReadonlySet<string> = new Set([
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-port",
  "x-forwarded-prefix",
  "x-real-ip",
]);

/** A header list in the shape `fetch` accepts without another copy. */
export type HeaderPairs = [string, string][];

/** The lower-cased field names listed in a `Connection` header value. */
function connectionTokens(value: string): Set<string> {
  const names = new Set<string>();
  for (const token of value.split(",")) {
    const name = token.trim().toLowerCase();
    if (name !== "") names.add(name);
  }
  return names;
}

/** Strips an IPv4-mapped IPv6 prefix so `::ffff:127.0.0.1` matches `127.0.0.1`. */
export function normalizeIp(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

/**
 * Builds the header list sent to a worker in one pass over the client's
 * headers: hop-by-hop fields (and those `Connection` names) dropped,
 * forwarding fields dropped unless `trusted`, `X-Forwarded-For` appended,
 * `X-Forwarded-Host`/`-Proto` set (kept when a trusted peer sent them), the
 * client's `Host` kept, `X-Request-Id` set to `requestId`.
 *
 * `Accept-Encoding` is sent as `identity`: Deno's `fetch` decodes a gzip, br
 * or deflate body for any other value yet keeps the `Content-Encoding` and
 * `Content-Length` headers, which would mislabel the bytes. With `identity`
 * it never decodes, so whatever the worker sends (a precompressed asset
 * included) reaches the client byte for byte with its own labels.
 */
export function upstreamHeaders(
  headers: Headers,
  clientIp: string,
  trusted: boolean,
  requestId: string,
): HeaderPairs {
  const connection = headers.get("connection");
  const named = connection === null ? undefined : connectionTokens(connection);
  const out: HeaderPairs = [];
  let host: string | null = null;
  let priorFor: string | null = null;
  let hasHost = false;
  let hasProto = false;
  for (const pair of headers) {
    const name = pair[0];
    if (HOP_SET.has(name) || (named !== undefined && named.has(name))) continue;
    if (FORWARDING.has(name)) {
      if (!trusted) continue;
      if (name === "x-forwarded-for") {
        priorFor = pair[1];
        continue;
      }
      if (name === "x-forwarded-host") hasHost = true;
      else if (name === "x-forwarded-proto") hasProto = true;
    } else if (name === "x-request-id" || name === "accept-encoding") {
      continue;
    } else if (name === "host") {
      host = pair[1];
    }
    out.push(pair as [string, string]);
  }
  out.push(
    [
      "x-forwarded-for",
      priorFor === null ? clientIp : `${priorFor}, ${clientIp}`,
    ],
    ["x-request-id", requestId],
    ["accept-encoding", "identity"],
  );
  if (!hasHost && host !== null) out.push(["x-forwarded-host", host]);
  if (!hasProto) out.push(["x-forwarded-proto", "http"]);
  return out;
}

/**
 * The response headers for the client in one pass over the worker's: without
 * hop-by-hop fields (and those `Connection` names), every `Set-Cookie` kept
 * as its own field, `X-Request-Id` added when the worker sent none.
 */
export function downstreamHeaders(
  headers: Headers,
  requestId: string,
): HeaderPairs {
  const connection = headers.get("connection");
  const named = connection === null ? undefined : connectionTokens(connection);
  const out: HeaderPairs = [];
  let hasId = false;
  for (const pair of headers) {
    const name = pair[0];
    if (HOP_SET.has(name) || (named !== undefined && named.has(name))) continue;
    if (name === "x-request-id") hasId = true;
    out.push(pair as [string, string]);
  }
  if (!hasId) out.push(["x-request-id", requestId]);
  return out;
}

/**
 * Edits a worker's response headers in place: hop-by-hop fields (and those
 * `Connection` names) removed, `X-Request-Id` added when absent. For
 * responses whose headers are mutable; cheaper than a copy when nothing
 * needs removing, which is the common case.
 */
export function stripInPlace(headers: Headers, requestId: string): void {
  const connection = headers.get("connection");
  if (connection !== null) {
    for (const name of connectionTokens(connection)) headers.delete(name);
  }
  for (const name of HOP_BY_HOP) {
    if (headers.has(name)) headers.delete(name);
  }
  if (!headers.has("x-request-id")) headers.set("x-request-id", requestId);
}

/** The raw path and query of an absolute request URL, exactly as the client sent them. */
export function pathAndQuery(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const hash = url.indexOf("#", start);
  return hash < 0 ? url.slice(start) : url.slice(start, hash);
}

/**
 * The path used for routing: the raw path, or the WHATWG-normalised one when
 * it holds dot segments or backslashes (`/a/../api` routes like `/api`, the
 * path `fetch` will send to the worker anyway).
 */
export function routingPath(target: string): string {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  if (
    path.includes("/.") || path.includes("\\") || path.includes("%2e") ||
    path.includes("%2E")
  ) {
    return new URL(path, "http://x").pathname;
  }
  return path;
}
