import type { RouteTable, Upstream } from "../routes/route_table.ts";
import { type Logger, silentLogger } from "../log/logger.ts";
import { describeError, errorResponse } from "./_errors.ts";
import {
  downstreamHeaders,
  normalizeIp,
  pathAndQuery,
  routingPath,
  stripInPlace,
  upstreamHeaders,
} from "./_headers.ts";
import { releasingBody } from "./_body.ts";
import { proxyWebSocket } from "./_websocket.ts";
import { HeaderDeadline, trackUpload } from "./_deadline.ts";
import { createH1Fetch } from "./_h1_fetch.ts";

/** Options for {@linkcode createProxy}. */
export interface ProxyOptions {
  /**
   * The transport used to reach workers, shaped like `fetch` (it gets a
   * string URL and an init with `method`, `headers` as `[name, value][]`,
   * `body`, `redirect: "manual"` and `signal`). Default: a lean HTTP/1.1
   * keep-alive client for body-less requests (about half the CPU of `fetch`
   * per request, see `_h1_fetch.ts`) that hands every other request to
   * `globalThis.fetch` with a `Deno.createHttpClient({ allowHost: true })`
   * client. Pass `globalThis.fetch` bound to such a client to use fetch only.
   */
  fetch?: typeof fetch;
  /** Logger for worker failures. Default: `silentLogger`. */
  logger?: Logger;
  /**
   * Peers whose inbound `X-Forwarded-*` headers are trusted and appended to;
   * from anyone else they are stripped. Default: `["127.0.0.1", "::1"]`.
   */
  trustedProxies?: string[];
  /**
   * How long an idle keep-alive connection to a worker is kept by the default
   * transport (`workers.default.idle_timeout_seconds`). Default 30000.
   */
  idleTimeoutMs?: number;
}

/**
 * The proxy's request handler, shaped like a `Deno.serve` handler, plus
 * `close()` for the idle worker connections of its default transport.
 */
export type ProxyHandler =
  & ((
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ) => Promise<Response>)
  & {
    /** Closes idle keep-alive connections to workers (call on shutdown). */
    close(): void;
  };

/** Status for a request whose client left before the worker answered (nginx's 499). */
const CLIENT_CLOSED = 499;

function isWebSocketUpgrade(req: Request): boolean {
  const upgrade = req.headers.get("upgrade");
  return upgrade !== null && upgrade.toLowerCase() === "websocket";
}

/**
 * Creates the reverse proxy: routes each request by `table.match(path)` (the
 * longest route prefix on a segment boundary), takes an instance from
 * `upstream.acquire()` and forwards the request with its original path and
 * query, streaming bodies both ways. The instance is released exactly once,
 * when the response has been fully sent, has failed or was cancelled.
 *
 * Failures answer 404 (no route), 502 (worker unreachable or reset), 503 with
 * `Retry-After` (no healthy instance) and 504 (no response headers within
 * `upstream.writeTimeoutMs`; a body already streaming is never cut).
 *
 * @param table The route table the supervisor keeps up to date.
 * @param options Transport, logger and trusted peers.
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
    fetch: customFetch,
    logger = silentLogger,
    trustedProxies = ["127.0.0.1", "::1"],
    idleTimeoutMs = 30_000,
  } = options;
  const trusted = new Set(trustedProxies.map(normalizeIp));
  const transport = customFetch === undefined
    ? createH1Fetch({ idleTimeoutMs })
    : undefined;
  const send = customFetch ?? transport!;

  async function forward(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    upstream: Upstream,
    target: string,
  ): Promise<Response> {
    const requestId = req.headers.get("x-request-id") ?? crypto.randomUUID();
    const instance = upstream.acquire();
    if (instance === undefined) {
      return errorResponse(
        req,
        503,
        `No healthy instance of worker "${upstream.name}"`,
        {
          requestId,
          headers: { "retry-after": String(upstream.retryAfterSeconds()) },
        },
      );
    }
    const clientIp = normalizeIp(info.remoteAddr.hostname);
    const headers = upstreamHeaders(
      req.headers,
      clientIp,
      trusted.has(clientIp),
      requestId,
    );
    const url = instance.origin + target;

    if (isWebSocketUpgrade(req)) {
      return proxyWebSocket(req, url, headers, {
        release: () => instance.release(),
        timeoutMs: upstream.writeTimeoutMs,
        logger,
        requestId,
        worker: upstream.name,
      });
    }

    const deadline = new HeaderDeadline(req, upstream.writeTimeoutMs);
    const init: RequestInit & { duplex?: string } = {
      method: req.method,
      headers,
      redirect: "manual",
      signal: deadline.signal,
    };
    if (req.body !== null) {
      init.body = trackUpload(req.body, deadline);
      init.duplex = "half";
    }

    let res: Response;
    try {
      res = await send(url, init);
    } catch (err) {
      deadline.clear();
      instance.release();
      return failure(
        req,
        err,
        deadline.timedOut,
        upstream,
        instance.origin,
        requestId,
      );
    }
    deadline.clear();

    const body = res.body;
    if (body === null) {
      instance.release();
    } else if (info.completed !== undefined) {
      // Deno.serve settles `completed` once the body is fully sent or failed,
      // so the worker's stream is handed over as is (no JS pump per chunk).
      const release = () => instance.release();
      info.completed.then(release, release);
    } else {
      return new Response(releasingBody(body, () => instance.release()), {
        status: res.status,
        statusText: res.statusText,
        headers: downstreamHeaders(res.headers, requestId),
      });
    }
    if (res.type === "default") {
      // Built by the transport itself (not a real fetch), so its headers are
      // usually ours to edit: no copy. Immutable ones fall through to a copy.
      try {
        stripInPlace(res.headers, requestId);
        return res;
      } catch (err) {
        if (!(err instanceof TypeError)) throw err;
      }
    }
    return new Response(body, {
      status: res.status,
      statusText: res.statusText,
      headers: downstreamHeaders(res.headers, requestId),
    });
  }

  function failure(
    req: Request,
    err: unknown,
    timedOut: boolean,
    upstream: Upstream,
    origin: string,
    requestId: string,
  ): Response {
    const worker = upstream.name;
    if (timedOut) {
      logger.warn("worker timed out", {
        worker,
        origin,
        timeout_ms: upstream.writeTimeoutMs,
        request_id: requestId,
      });
      return errorResponse(
        req,
        504,
        `Worker "${worker}" did not answer within ${upstream.writeTimeoutMs} ms`,
        { requestId },
      );
    }
    if (req.signal.aborted) {
      logger.debug("client closed request", { worker, request_id: requestId });
      return errorResponse(req, CLIENT_CLOSED, "Client closed request", {
        requestId,
      });
    }
    logger.warn("worker unreachable", {
      worker,
      origin,
      error: describeError(err),
      request_id: requestId,
    });
    return errorResponse(req, 502, `Worker "${worker}" is unreachable`, {
      requestId,
    });
  }

  function proxy(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> {
    const target = pathAndQuery(req.url);
    const upstream = table.match(routingPath(target));
    if (upstream === undefined) {
      return Promise.resolve(
        errorResponse(req, 404, "No route for this path"),
      );
    }
    return forward(req, info, upstream, target);
  }

  return Object.assign(proxy, {
    close(): void {
      transport?.close();
    },
  });
}
