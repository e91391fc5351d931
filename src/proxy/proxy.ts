import type { RouteTable } from "../routes/route_table.ts";
import { type Logger, silentLogger } from "../log/logger.ts";
import { type ErrorHandler, errorResponse } from "./_errors.ts";
import type { RequestFields } from "./_headers.ts";
import { cidrMatcher } from "../cidr.ts";
import {
  DEFAULT_MAX_WS_MESSAGE_BYTES,
  DEFAULT_READ_TIMEOUT_MS,
  DEFAULT_REQUEST_BUFFER_BYTES,
  DEFAULT_RETRY_WINDOW_MS,
  DEFAULT_TRUSTED_PROXIES,
  DEFAULT_UPSTREAM_IDLE_MS,
} from "../config/defaults.ts";
import { WebSocketRelay } from "./_websocket.ts";
import { MISSING_HOST, NO_ROUTE } from "./_failures.ts";
import { forwardingFor, type ForwardingOptions } from "./_forwarding.ts";
import { HttpForwarder, type ProxySettings } from "./_http.ts";
import { Transport } from "./_transport.ts";
import { type RequestContext, workerContext } from "./context.ts";

/** Options for {@linkcode createProxy}. */
export interface ProxyOptions {
  /** Logger for worker failures. Default: `silentLogger`. */
  logger?: Logger;
  /**
   * Builds every error answer of the proxy (400, 404, 408, 413, 499, 500,
   * 502, 503, 504) from a failure already classified and logged, like Go's
   * `ReverseProxy.ErrorHandler`. Default: {@linkcode errorResponse} (HTML
   * for browsers, JSON otherwise).
   */
  onError?: ErrorHandler;
  /**
   * Peers (addresses or CIDR ranges, `server.trusted_proxies`) whose inbound
   * `X-Forwarded-For` is appended to and `X-Forwarded-Proto`/`-Host` kept;
   * from anyone else all three are replaced. Default: loopback,
   * `["127.0.0.0/8", "::1/128"]`.
   */
  trustedProxies?: string[];
  /**
   * How long an idle keep-alive connection to a worker is kept
   * (`workers.default.idle_timeout_seconds`), unless its upstream says
   * otherwise. Default 30000.
   */
  idleTimeoutMs?: number;
  /**
   * A chunked request body up to this many bytes is buffered and sent with a
   * `Content-Length`; a larger one streams chunked
   * (`server.request_buffer_bytes`). Default 1048576.
   */
  requestBufferBytes?: number;
  /** A request body over this many bytes is answered 413; 0 = no limit (`server.max_body_bytes`). Default 0. */
  maxBodyBytes?: number;
  /**
   * Folder of chunked bodies larger than `requestBufferBytes`, spooled and
   * then sent with their length (`server.body_temp_dir`). Default: the OS
   * temp dir.
   */
  bodyTempDir?: string | undefined;
  /**
   * A WebSocket message over this many bytes closes both legs with 1009
   * (`server.max_ws_message_bytes`). Default 67108864, the largest frame
   * Deno's WebSocket server accepts.
   */
  maxWebSocketMessageBytes?: number;
  /**
   * A client silent this long in the middle of its body is answered 408
   * (`server.read_timeout_seconds`), unless its upstream says otherwise.
   * Default 30000.
   */
  readTimeoutMs?: number;
  /**
   * How long a failed request that can be resent waits for a healthy
   * instance, unless its upstream says otherwise
   * (`workers.default.retry_window_ms`). Default 3000.
   */
  retryWindowMs?: number;
}

/** The options of {@linkcode createProxy} a config reload may change. */
export type ProxyLimits = Pick<
  ProxyOptions,
  | "requestBufferBytes"
  | "maxBodyBytes"
  | "readTimeoutMs"
  | "retryWindowMs"
  | "bodyTempDir"
  | "maxWebSocketMessageBytes"
  | "trustedProxies"
>;

/**
 * The proxy's request handler, shaped like a `Deno.serve` handler (with the
 * request's context as an optional third argument), plus `close()` for the
 * idle worker connections of its transport.
 */
export type ProxyHandler =
  & ((
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    ctx?: RequestContext,
  ) => Promise<Response>)
  & {
    /** Closes idle keep-alive connections to workers (call on shutdown). */
    close(): void;
    /**
     * Applies a reloaded config's body limits, read timeout, retry window and
     * trusted proxies to the requests that start from now on.
     */
    reconfigure(next: ProxyLimits): void;
    /**
     * Closes every proxied WebSocket with 1001 "going away" (and its worker
     * side with it), so a stopping server waits on none of them.
     */
    closeWebSockets(): void;
    /**
     * Closes the WebSockets connected to the instance at `origin` (one being
     * replaced) with 1012 "service restart", each at a random moment in the
     * second half of `drainMs`, both legs. Resolves once every worker
     * connection among them has ended (at most about `drainMs` + 1 s: the
     * closing handshake is bounded); WebSockets of other instances are never
     * touched.
     */
    retireWebSockets(origin: string, drainMs: number): Promise<void>;
  };

function isWebSocketUpgrade(fields: RequestFields): boolean {
  const upgrade = fields.upgrade;
  return upgrade !== null && upgrade.toLowerCase() === "websocket";
}

/**
 * Creates the reverse proxy: routes each request by `table.match(path)` (the
 * longest route prefix on a segment boundary), takes an instance from
 * `upstream.acquire()` and forwards the request with its original path and
 * query over one HTTP/1.1 transport that keeps the client's framing (see
 * `_transport.ts`). The instance is released exactly once, when the response
 * has been fully sent, has failed or was cancelled.
 *
 * A request comes with its context from the public handler (route matched,
 * Host checked, fields read), or alone, when the proxy makes the context and
 * checks Host itself. The proxy completes the context with the forwarding
 * fields and its answer's header pairs (see `RequestContext`).
 *
 * Failures answer 400 (no `Host`, RFC 9112 §3.2; or a GET/HEAD with a
 * body), 404 (no route), 408 (client silent mid-body), 413 (body
 * over `maxBodyBytes`), 502 (worker unreachable or reset), 503 with
 * `Retry-After` (no healthy instance) and 504 (no response headers within
 * `upstream.writeTimeoutMs`; a body already streaming is never cut), each
 * built by `onError`. A request none of whose bytes reached a worker, or an
 * idempotent one with its body in hand, that fails because its instance
 * died (also inside a response the client has seen nothing of) is tried
 * again on a healthy instance for up to the retry window.
 *
 * @param table The route table the supervisor keeps up to date.
 * @param options Logger, error handler, trusted peers, body limits and timeouts.
 * @returns A handler for `Deno.serve`; it needs the real `info` (remote
 *   address, `completed`) of the request.
 *
 * @example
 * ```ts
 * const table = new RouteTable();
 * Deno.serve({ port: 8080 }, createProxy(table));
 * ```
 */
export function createProxy(
  table: RouteTable,
  options: ProxyOptions = {},
): ProxyHandler {
  const {
    logger = silentLogger,
    onError = errorResponse,
    trustedProxies = DEFAULT_TRUSTED_PROXIES,
    idleTimeoutMs = DEFAULT_UPSTREAM_IDLE_MS,
  } = options;
  // Reloadable (see `reconfigure`): read by the forwarders on every request.
  const {
    requestBufferBytes = DEFAULT_REQUEST_BUFFER_BYTES,
    maxBodyBytes = 0,
    readTimeoutMs = DEFAULT_READ_TIMEOUT_MS,
    retryWindowMs = DEFAULT_RETRY_WINDOW_MS,
    bodyTempDir,
    maxWebSocketMessageBytes = DEFAULT_MAX_WS_MESSAGE_BYTES,
  } = options;
  const settings: ProxySettings = {
    requestBufferBytes,
    maxBodyBytes,
    readTimeoutMs,
    retryWindowMs,
    bodyTempDir,
    maxWebSocketMessageBytes,
  };
  const forwarding: ForwardingOptions = {
    trusted: cidrMatcher(trustedProxies),
  };
  const routes = { routes: table };
  const http = new HttpForwarder({
    transport: new Transport({ idleTimeoutMs }),
    settings,
    logger,
    onError,
  });
  const sockets = new WebSocketRelay({ settings, logger, onError });

  function proxy(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    ctx?: RequestContext,
  ): Promise<Response> {
    if (ctx === undefined) {
      // Alone: the context is made, and Host checked, here.
      ctx = workerContext(req, info, routes);
      if (ctx.hostMissing(req)) {
        return Promise.resolve(onError(req, MISSING_HOST));
      }
    }
    const fields = ctx.fields;
    if (ctx.upstream === undefined || fields === undefined) {
      return Promise.resolve(onError(req, NO_ROUTE));
    }
    ctx.forwarding = forwardingFor(req, ctx, forwarding);
    return isWebSocketUpgrade(fields)
      ? sockets.forward(req, ctx)
      : http.forward(req, ctx);
  }

  return Object.assign(proxy, {
    close(): void {
      http.close();
    },
    reconfigure(next: ProxyLimits): void {
      settings.requestBufferBytes = next.requestBufferBytes ??
        settings.requestBufferBytes;
      settings.maxBodyBytes = next.maxBodyBytes ?? settings.maxBodyBytes;
      settings.readTimeoutMs = next.readTimeoutMs ?? settings.readTimeoutMs;
      settings.retryWindowMs = next.retryWindowMs ?? settings.retryWindowMs;
      // Undefined here means the OS temp dir, not "unchanged".
      if ("bodyTempDir" in next) settings.bodyTempDir = next.bodyTempDir;
      settings.maxWebSocketMessageBytes = next.maxWebSocketMessageBytes ??
        settings.maxWebSocketMessageBytes;
      if (next.trustedProxies) {
        forwarding.trusted = cidrMatcher(next.trustedProxies);
      }
    },
    closeWebSockets(): void {
      sockets.closeAll();
    },
    retireWebSockets(origin: string, drainMs: number): Promise<void> {
      return sockets.retire(origin, drainMs);
    },
  });
}
