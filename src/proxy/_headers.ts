/**
 * Hop-by-hop header fields: they describe one connection, not the message, so
 * a proxy must not forward them (RFC 9110 §7.6.1). `Keep-Alive` and
 * `Proxy-Connection` are the legacy HTTP/1.0 fields §7.6.1 tells proxies to
 * drop as well; `Proxy-Authorization` and `Proxy-Authenticate` are meant for
 * this proxy, not the worker (RFC 9110 §11.7; Go's ReverseProxy drops them
 * too); any field the `Connection` header names is removed too (but never
 * `Host`).
 */
export const HOP_BY_HOP: readonly string[] = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

const HOP_SET: ReadonlySet<string> = new Set(HOP_BY_HOP);

/**
 * Request fields the transport writes itself: the framing (`Content-Length`,
 * from the body actually sent) and `Expect`, which Deno.serve already
 * answered with `100 Continue` on the client's hop.
 */
const FRAMING: ReadonlySet<string> = new Set(["content-length", "expect"]);

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
 * The fields of a client's request the proxy acts on, read in one pass by
 * {@linkcode readRequestFields}.
 */
export interface RequestFields {
  /** Every field in `Headers` order (names lower-case, repeated ones joined). */
  readonly pairs: readonly [string, string][];
  readonly host: string | null;
  readonly contentLength: string | null;
  readonly transferEncoding: string | null;
  readonly requestId: string | null;
  readonly connection: string | null;
  readonly upgrade: string | null;
}

/**
 * Reads a request's fields once, with `forEach`: measured on Deno.serve
 * requests, `for…of` over `Headers` costs 4–6× as much (an iterator result
 * and a pair per field), and each `get` scans the list again.
 */
export function readRequestFields(headers: Headers): RequestFields {
  const pairs: [string, string][] = [];
  let host: string | null = null;
  let contentLength: string | null = null;
  let transferEncoding: string | null = null;
  let requestId: string | null = null;
  let connection: string | null = null;
  let upgrade: string | null = null;
  headers.forEach((value, name) => {
    pairs.push([name, value]);
    switch (name) {
      case "host":
        host = value;
        break;
      case "content-length":
        contentLength = value;
        break;
      case "transfer-encoding":
        transferEncoding = value;
        break;
      case "x-request-id":
        requestId = value;
        break;
      case "connection":
        connection = value;
        break;
      case "upgrade":
        upgrade = value;
        break;
    }
  });
  return {
    pairs,
    host,
    contentLength,
    transferEncoding,
    requestId,
    connection,
    upgrade,
  };
}

/** Who the request is forwarded for, shared by {@linkcode upstreamHeaders} and {@linkcode requestHead}. */
export interface ForwardInit {
  /** The Host to send: the client's, or an absolute-form target's authority. */
  host: string;
  clientIp: string;
  /** True when the client is a trusted proxy whose forwarding fields are kept. */
  trusted: boolean;
  requestId: string;
}

/**
 * Builds the header list sent to a worker in one pass over the client's
 * headers: `Host` set to `init.host` (even when `Connection` names it),
 * hop-by-hop fields (and those `Connection` names) dropped, forwarding fields
 * dropped unless `trusted`, `X-Forwarded-For` appended,
 * `X-Forwarded-Host`/`-Proto` set (kept when a trusted peer sent them),
 * `X-Request-Id` set to `requestId`. Used for WebSocket upgrades; plain
 * requests use {@linkcode requestHead}, which writes the same fields as text.
 */
export function upstreamHeaders(
  fields: RequestFields,
  init: ForwardInit,
): HeaderPairs {
  const out: HeaderPairs = [];
  forwardFields(fields, init, false, (name, value) => {
    out.push([name, value]);
  });
  return out;
}

/**
 * The rules of {@linkcode upstreamHeaders}, each field handed to `emit` in
 * order (no list built on the hot path); with `dropFraming`, also without
 * the framing fields.
 */
function forwardFields(
  fields: RequestFields,
  init: ForwardInit,
  dropFraming: boolean,
  emit: (name: string, value: string) => void,
): void {
  const { host, clientIp, trusted, requestId } = init;
  const connection = fields.connection;
  const named = connection === null ? undefined : connectionTokens(connection);
  emit("host", host);
  let priorFor: string | null = null;
  let hasHost = false;
  let hasProto = false;
  for (const pair of fields.pairs) {
    const name = pair[0];
    if (
      name === "host" || HOP_SET.has(name) ||
      (dropFraming && FRAMING.has(name)) ||
      (named !== undefined && named.has(name))
    ) continue;
    if (FORWARDING.has(name)) {
      if (!trusted) continue;
      if (name === "x-forwarded-for") {
        priorFor = pair[1];
        continue;
      }
      if (name === "x-forwarded-host") hasHost = true;
      else if (name === "x-forwarded-proto") hasProto = true;
    } else if (name === "x-request-id") {
      continue;
    }
    emit(name, pair[1]);
  }
  emit(
    "x-forwarded-for",
    priorFor === null ? clientIp : `${priorFor}, ${clientIp}`,
  );
  emit("x-request-id", requestId);
  if (!hasHost) emit("x-forwarded-host", host);
  if (!hasProto) emit("x-forwarded-proto", "http");
}

/** What {@linkcode requestHead} needs besides the client's headers. */
export interface RequestHeadInit extends ForwardInit {
  method: string;
  /** Path and query as the client sent them. */
  target: string;
}

/**
 * The request line and header lines for a worker (each ending in CRLF): the
 * fields of {@linkcode upstreamHeaders}, minus the framing fields the
 * transport writes from the body it sends. The client's `Accept-Encoding` is
 * kept: the transport never decodes, so a compressed answer passes through
 * intact.
 */
export function requestHead(
  fields: RequestFields,
  init: RequestHeadInit,
): string {
  let head = `${init.method} ${init.target} HTTP/1.1\r\n`;
  forwardFields(fields, init, true, (name, value) => {
    head += `${name}: ${value}\r\n`;
  });
  return head;
}

/**
 * The response header pairs for the client from a parsed worker head:
 * hop-by-hop fields (and those `Connection` names) dropped, every
 * `Set-Cookie` kept; nothing added (the `X-Request-Id` sent to the worker
 * reaches the client only if the worker sends it back, as with nginx and
 * Envoy). The worker's `Date` is left out: Deno.serve writes the proxy's own
 * on every answer (nginx hides an upstream's `Date` too, see its
 * `proxy_pass_header`), and each field passed on is checked and copied once
 * more. With `dropLength` (a body of bytes in hand, whose length Deno.serve
 * writes itself), `Content-Length` is left out too.
 */
export function downstreamPairs(
  pairs: readonly [string, string][],
  dropLength = false,
): HeaderPairs {
  let named: Set<string> | undefined;
  for (const pair of pairs) {
    if (pair[0] === "connection") {
      named ??= new Set();
      for (const token of connectionTokens(pair[1])) named.add(token);
    }
  }
  const out: HeaderPairs = [];
  for (const pair of pairs) {
    const name = pair[0];
    if (HOP_SET.has(name) || (named !== undefined && named.has(name))) continue;
    if (name === "date" || (dropLength && name === "content-length")) continue;
    out.push(pair as [string, string]);
  }
  return out;
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
