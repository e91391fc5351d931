/**
 * Folder-private: who a request is forwarded for, decided in one place — the
 * client's address, whether its own forwarding fields are trusted, the Host
 * to send and the request id. `_headers.ts` writes the fields from it.
 */
import { type ForwardInit, normalizeIp } from "./_headers.ts";
import type { RequestContext } from "./context.ts";

/** Options for {@linkcode forwardingFor}. */
export interface ForwardingOptions {
  /** True for a peer (normalised address) whose inbound `X-Forwarded-*` fields are kept and appended to. */
  trusted: (ip: string) => boolean;
}

/**
 * The forwarding fields of a request: its `X-Request-Id` (the client's, or a
 * new UUID), the peer's address, whether that peer is a trusted proxy, and
 * the Host to send (see {@linkcode hostFor}).
 *
 * @param req The client's request.
 * @param ctx Its context; `fields` must have been read.
 */
export function forwardingFor(
  req: Request,
  ctx: RequestContext,
  options: ForwardingOptions,
): ForwardInit {
  const fields = ctx.fields!;
  const clientIp = normalizeIp(ctx.info.remoteAddr.hostname);
  return {
    requestId: fields.requestId ?? crypto.randomUUID(),
    clientIp,
    host: hostFor(req.url, fields.host ?? ""),
    trusted: options.trusted(clientIp),
  };
}

/**
 * The Host to send: the client's `Host`, unless the request target was in
 * absolute form (`GET http://a.example/x`), whose authority wins
 * (RFC 9112 §3.2.2). Deno.serve builds `req.url` from that authority, or
 * from `Host` for the usual origin form.
 */
function hostFor(url: string, host: string): string {
  const start = url.indexOf("//") + 2;
  let end = url.indexOf("/", start);
  if (end < 0) end = url.length;
  const authority = url.slice(start, end);
  return host === authority || host.toLowerCase() === authority.toLowerCase()
    ? host
    : authority;
}
