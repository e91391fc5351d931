import type {
  RouteTable,
  Upstream,
  UpstreamTarget,
} from "../routes/route_table.ts";
import { type Logger, silentLogger } from "../log/logger.ts";
import {
  DEFAULT_MAX_WS_MESSAGE_BYTES,
  DEFAULT_READ_TIMEOUT_MS,
  DEFAULT_REQUEST_BUFFER_BYTES,
  DEFAULT_RETRY_WINDOW_MS,
  DEFAULT_TRUSTED_PROXIES,
  DEFAULT_UPSTREAM_IDLE_MS,
} from "../config/defaults.ts";
import { describeError, errorResponse } from "./_errors.ts";
import {
  downstreamPairs,
  type HeaderPairs,
  normalizeIp,
  pathAndQuery,
  readRequestFields,
  type RequestFields,
  requestHead,
  routingPath,
  upstreamHeaders,
} from "./_headers.ts";
import { releasingBody } from "./_body.ts";
import { proxyWebSocket, type WebSocketBridge } from "./_websocket.ts";
import { cidrMatcher } from "../cidr.ts";
import {
  CLIENT_CLOSED,
  clientFailure,
  failure,
  isClientFailure,
  unavailable,
} from "./_failures.ts";
import { HeaderDeadline } from "./_deadline.ts";
import {
  ConnectError,
  CutResponseError,
  IDEMPOTENT,
  NoResponseError,
  Transport,
  type UpstreamResponse,
} from "./_transport.ts";
import {
  type BodyLimits,
  prepareBody,
  removeSpooled,
  type RequestBody,
  SpoolError,
} from "./_request_writer.ts";

/** Options for {@linkcode createProxy}. */
export interface ProxyOptions {
  /** Logger for worker failures. Default: `silentLogger`. */
  logger?: Logger;
  /**
   * Peers (addresses or CIDR ranges, `server.trusted_proxies`) whose inbound
   * `X-Forwarded-*` headers are trusted and appended to; from anyone else they
   * are replaced. Default: loopback, `["127.0.0.0/8", "::1/128"]`.
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
 * The proxy's request handler, shaped like a `Deno.serve` handler, plus
 * `close()` for the idle worker connections of its transport.
 */
export type ProxyHandler =
  & ((
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
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

const PAIRS = Symbol("proxied header pairs");
const LENGTH = Symbol("proxied body length");
type Proxied = Response & {
  [PAIRS]?: readonly [string, string][];
  /** The length of a body of bytes, whose Content-Length is not among the pairs. */
  [LENGTH]?: number;
};

/**
 * Reads the headers of an answer the proxy made straight from the pairs it
 * was built from (names lower-case; repeated fields joined with ", ", as
 * `Headers.get` does; `content-length` is the length of a body of bytes,
 * which `Deno.serve` writes itself and is not among them); undefined for any
 * other Response. The stages after the proxy (compression, event-stream
 * tracking, the access log) read through it: touching `res.headers` makes
 * Deno.serve drop the answer's native headers, about 2 µs of CPU per request.
 */
export function proxiedHeaders(
  res: Response,
): ((name: string) => string | null) | undefined {
  const pairs = (res as Proxied)[PAIRS];
  if (pairs === undefined) return undefined;
  const length = (res as Proxied)[LENGTH];
  return (name) => {
    let value: string | null = null;
    for (const pair of pairs) {
      if (pair[0] === name) {
        value = value === null ? pair[1] : value + ", " + pair[1];
      }
    }
    if (value === null && length !== undefined && name === "content-length") {
      return String(length);
    }
    return value;
  };
}

const REQUEST_ID = Symbol("request id");
type Tagged = Request & { [REQUEST_ID]?: string };

/**
 * The `X-Request-Id` the proxy sent to the worker for `req` (the client's,
 * or the one it made), for the access log: the answer does not carry it
 * unless the worker sent it back. Undefined for a request the proxy did not
 * forward.
 */
export function proxiedRequestId(req: Request): string | undefined {
  return (req as Tagged)[REQUEST_ID];
}

/** Pause between two tries of a request that failed because its instance died. */
const RETRY_PAUSE_MS = 25;

/** Who sent a request, as the forwarding headers say it. */
interface Client {
  requestId: string;
  clientIp: string;
  /** The Host to send (see `hostFor`). */
  host: string;
  isTrusted: boolean;
}

/** A worker origin split for `Deno.connect`. */
interface Origin {
  hostname: string;
  port: number;
  key: string;
}

/**
 * Creates the reverse proxy: routes each request by `table.match(path)` (the
 * longest route prefix on a segment boundary), takes an instance from
 * `upstream.acquire()` and forwards the request with its original path and
 * query over one HTTP/1.1 transport that keeps the client's framing (see
 * `_transport.ts`). The instance is released exactly once, when the response
 * has been fully sent, has failed or was cancelled.
 *
 * Failures answer 400 (no `Host`, RFC 9112 §3.2; or a GET/HEAD with a
 * body), 404 (no route), 408 (client silent mid-body), 413 (body
 * over `maxBodyBytes`), 502 (worker unreachable or reset), 503 with
 * `Retry-After` (no healthy instance) and 504 (no response headers within
 * `upstream.writeTimeoutMs`; a body already streaming is never cut). A
 * request none of whose bytes reached a worker, or an idempotent one with
 * its body in hand, that fails because its instance died (also inside a
 * response the client has seen nothing of) is tried again on a healthy
 * instance for up to the retry window.
 *
 * @param table The route table the supervisor keeps up to date.
 * @param options Logger, trusted peers, body limits and timeouts.
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
    idleTimeoutMs = DEFAULT_UPSTREAM_IDLE_MS,
  } = options;
  // Reloadable (see `reconfigure`).
  let {
    requestBufferBytes = DEFAULT_REQUEST_BUFFER_BYTES,
    maxBodyBytes = 0,
    readTimeoutMs = DEFAULT_READ_TIMEOUT_MS,
    retryWindowMs = DEFAULT_RETRY_WINDOW_MS,
    bodyTempDir,
    maxWebSocketMessageBytes = DEFAULT_MAX_WS_MESSAGE_BYTES,
  } = options;
  let trusted = cidrMatcher(options.trustedProxies ?? DEFAULT_TRUSTED_PROXIES);
  const transport = new Transport({ idleTimeoutMs });
  const origins = new Map<string, Origin>();

  function originOf(url: string): Origin {
    let origin = origins.get(url);
    if (origin === undefined) {
      const parsed = new URL(url);
      origin = {
        hostname: parsed.hostname.replace(/^\[|\]$/g, ""),
        port: Number(parsed.port || "80"),
        key: parsed.host,
      };
      if (origins.size > 4096) origins.clear();
      origins.set(url, origin);
    }
    return origin;
  }
  const sockets = new Set<WebSocketBridge>();

  async function forward(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    fields: RequestFields,
    upstream: Upstream,
    target: string,
  ): Promise<Response> {
    const requestId = fields.requestId ?? crypto.randomUUID();
    (req as Tagged)[REQUEST_ID] = requestId;
    const clientIp = normalizeIp(info.remoteAddr.hostname);
    const host = hostFor(req.url, fields.host ?? "");
    const isTrusted = trusted(clientIp);

    if (isWebSocketUpgrade(fields)) {
      const instance = upstream.acquire();
      if (instance === undefined) return unavailable(req, upstream, requestId);
      const headers = upstreamHeaders(fields, {
        host,
        clientIp,
        trusted: isTrusted,
        requestId,
      });
      return proxyWebSocket(req, target, headers, {
        origin: instance.origin,
        release: () => instance.release(),
        timeoutMs: upstream.writeTimeoutMs,
        maxMessageBytes: maxWebSocketMessageBytes,
        logger,
        requestId,
        worker: upstream.name,
        open: sockets,
      });
    }

    const lengthField = fields.contentLength;
    const contentLength = lengthField === null ? -1 : Number(lengthField);
    if (
      req.body === null &&
      (contentLength > 0 || fields.transferEncoding !== null)
    ) {
      // Deno.serve drops the body of a GET or HEAD: refuse it rather than
      // send a length without its bytes (which would desync the worker).
      logger.debug("request body refused", {
        client: clientIp,
        method: req.method,
        request_id: requestId,
      });
      return errorResponse(
        req,
        400,
        `A ${req.method} request with a body is not supported`,
        // No Connection: close: Deno.serve drains a whole body and adds it
        // itself for an unfinished one (setting it too sends it twice).
        { requestId },
      );
    }
    const limits: BodyLimits = {
      bufferBytes: requestBufferBytes,
      maxBodyBytes,
      readTimeoutMs: upstream.readTimeoutMs ?? readTimeoutMs,
      tempDir: bodyTempDir,
    };
    let body: RequestBody;
    try {
      // No await for the usual body-less request: each is a turn of the microtask queue.
      body = req.body === null
        ? NO_BODY
        : await prepareBody(req, contentLength, limits);
    } catch (err) {
      if (err instanceof SpoolError) {
        // The operator's to fix (nginx answers 500 too): a disk full or
        // a missing `server.body_temp_dir`.
        logger.error("request body not spooled", {
          key: "server.body_temp_dir",
          error: err.message,
          cause: describeError(err.cause),
          request_id: requestId,
        });
        return errorResponse(req, 500, "The request body could not be stored", {
          requestId,
          headers: { connection: "close" },
        });
      }
      return clientFailure(err, { req, logger, upstream, requestId, clientIp });
    }
    const client: Client = { requestId, clientIp, host, isTrusted };
    if (body.kind !== "file") {
      return send(req, info, fields, upstream, target, body, limits, client);
    }
    // A spooled body lives until the worker's answer head is in (or the
    // request failed): what the upload still reads has the file open.
    const spooled = body.path;
    try {
      return await send(
        req,
        info,
        fields,
        upstream,
        target,
        body,
        limits,
        client,
      );
    } finally {
      await removeSpooled(spooled).catch((err) =>
        logger.error("spooled body not removed", {
          path: spooled,
          error: describeError(err),
          request_id: requestId,
        })
      );
    }
  }

  async function send(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    fields: RequestFields,
    upstream: Upstream,
    target: string,
    body: RequestBody,
    limits: BodyLimits,
    client: Client,
  ): Promise<Response> {
    const { requestId, clientIp, host, isTrusted } = client;
    const lengthField = fields.contentLength;
    let head = requestHead(fields, {
      method: req.method,
      target,
      host,
      clientIp,
      trusted: isTrusted,
      requestId,
    });
    // A body-less request keeps the length it announced (e.g. a 0-byte POST).
    if (body.kind === "none" && lengthField !== null) {
      head += `content-length: ${lengthField}\r\n`;
    }
    const canResend = body.kind !== "stream"; // A spooled file is read again.
    const idempotent = IDEMPOTENT.has(req.method);
    let retryUntil = 0;
    let cutBefore = false;

    /** Starts the retry window at the first failure; true while it lasts. */
    const mayRetry = () => {
      const now = performance.now();
      if (retryUntil === 0) {
        retryUntil = now + (upstream.retryWindowMs ?? retryWindowMs);
      }
      return now < retryUntil && !req.signal.aborted;
    };

    for (;;) {
      let instance = upstream.acquire();
      if (instance === undefined) {
        // No healthy instance: wait for a replacement, like Caddy's lb_try_duration.
        if (!mayRetry()) return unavailable(req, upstream, requestId);
        if (upstream.acquireWithin === undefined) {
          await pause(RETRY_PAUSE_MS);
          continue;
        }
        instance = await upstream.acquireWithin(
          Math.max(0, retryUntil - performance.now()),
          req.signal,
        );
        if (instance === undefined) {
          if (req.signal.aborted) {
            return errorResponse(req, CLIENT_CLOSED, "Client closed request", {
              requestId,
            });
          }
          return unavailable(req, upstream, requestId);
        }
      }
      const origin = originOf(instance.origin);
      const deadline = new HeaderDeadline(req, upstream.writeTimeoutMs);
      let res: UpstreamResponse;
      try {
        res = await transport.send({
          hostname: origin.hostname,
          port: origin.port,
          origin: origin.key,
          method: req.method,
          head,
          body,
          limits,
          deadline,
          idleTimeoutMs: upstream.idleTimeoutMs,
        });
      } catch (err) {
        deadline.clear();
        instance.release();
        const resendable = err instanceof ConnectError ||
          (err instanceof NoResponseError && canResend &&
            (idempotent || !err.written)) ||
          // Once: a worker that cuts every answer short gets its 502 at once.
          (err instanceof CutResponseError && canResend && idempotent &&
            !cutBefore);
        if (err instanceof CutResponseError) cutBefore = true;
        if (resendable && !deadline.fired && mayRetry()) {
          logger.debug("worker request resent", {
            worker: upstream.name,
            origin: instance.origin,
            error: describeError(err),
            request_id: requestId,
          });
          await pause(RETRY_PAUSE_MS);
          continue;
        }
        if (isClientFailure(err)) {
          return clientFailure(err, {
            req,
            logger,
            upstream,
            requestId,
            clientIp,
          });
        }
        return failure(err, {
          req,
          logger,
          upstream,
          requestId,
          deadline,
          origin: instance.origin,
        });
      }
      return respond(res, info, instance);
    }
  }

  function respond(
    res: UpstreamResponse,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    instance: UpstreamTarget,
  ): Response {
    const { head } = res;
    let body = res.body;
    if (body instanceof ReadableStream) {
      if (info.completed !== undefined) {
        // Deno.serve settles `completed` once the body is fully sent or
        // failed, so the worker's stream is handed over as is.
        const release = () => instance.release();
        info.completed.then(release, release);
      } else {
        body = releasingBody(body, () => instance.release());
      }
    } else {
      instance.release();
    }
    // No statusText: Deno.serve sends the standard reason phrase whatever it
    // is given (clients ignore it, RFC 9112 §4), and checking the worker's
    // costs time on every answer.
    // A body of bytes: Deno.serve writes its length, so the worker's
    // Content-Length is not passed on to be checked and copied once more.
    const length = body instanceof Uint8Array ? body.length : -1;
    const bytes = length >= 0;
    let headers: HeaderPairs;
    let answer: Proxied;
    try {
      headers = downstreamPairs(head.headers, bytes);
      answer = new Response(body, { status: head.status, headers });
    } finally {
      // The Response holds its own copy now: the connection may take the next request.
      res.release?.();
    }
    answer[PAIRS] = headers;
    if (bytes) answer[LENGTH] = length;
    return answer;
  }

  function proxy(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> {
    // Read once, here: the Host check, the forwarding rules and the framing all use them.
    const fields = readRequestFields(req.headers);
    if (fields.host === null) {
      // RFC 9112 §3.2: a request without Host is answered 400. Deno.serve
      // does not expose the HTTP version, so an HTTP/1.0 one is refused too.
      return Promise.resolve(
        errorResponse(req, 400, "The request has no Host header"),
      );
    }
    const target = pathAndQuery(req.url);
    const upstream = table.match(routingPath(target));
    if (upstream === undefined) {
      return Promise.resolve(
        errorResponse(req, 404, "No route for this path"),
      );
    }
    return forward(req, info, fields, upstream, target);
  }

  return Object.assign(proxy, {
    close(): void {
      transport.close();
    },
    reconfigure(next: ProxyLimits): void {
      requestBufferBytes = next.requestBufferBytes ?? requestBufferBytes;
      maxBodyBytes = next.maxBodyBytes ?? maxBodyBytes;
      readTimeoutMs = next.readTimeoutMs ?? readTimeoutMs;
      retryWindowMs = next.retryWindowMs ?? retryWindowMs;
      // Undefined here means the OS temp dir, not "unchanged".
      if ("bodyTempDir" in next) bodyTempDir = next.bodyTempDir;
      maxWebSocketMessageBytes = next.maxWebSocketMessageBytes ??
        maxWebSocketMessageBytes;
      if (next.trustedProxies) trusted = cidrMatcher(next.trustedProxies);
    },
    closeWebSockets(): void {
      for (const socket of sockets) socket.close(1001, "Server shutting down");
    },
    retireWebSockets(origin: string, drainMs: number): Promise<void> {
      const retiring = [...sockets].filter((s) => s.origin === origin);
      if (retiring.length === 0) return Promise.resolve();
      for (const socket of retiring) {
        // Spread over the second half of the window: messages in flight get
        // at least half of it, and a thousand clients do not reconnect in
        // the same millisecond.
        const delay = drainMs / 2 + Math.random() * (drainMs / 2);
        const timer = setTimeout(
          () => socket.close(1012, "Service restart"),
          delay,
        );
        socket.ended.then(() => clearTimeout(timer));
      }
      return Promise.all(retiring.map((s) => s.ended)).then(() => {});
    },
  });
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

const NO_BODY: RequestBody = { kind: "none" };

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
