import type { AccessEntry } from "../log/mod.ts";
import type { ContextHandler, RequestContext } from "../proxy/mod.ts";
import type { ServerMetrics } from "./server_metrics.ts";

type Handler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** Options for {@linkcode meterRequests}. */
export interface MeterOptions {
  /** Where the counters go. */
  metrics: ServerMetrics;
  /**
   * Makes the request's context (e.g. the public handler's `route`): its
   * `worker` names what answers (a worker name, `static`, `_tq` or `-`), its
   * `started` is when the latency starts; the handler completes it (the
   * request id forwarded, the answer's header pairs).
   */
  route: (
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ) => RequestContext;
  /** Receives one entry per answered request (the access log). Default: none. */
  access?: ((entry: AccessEntry) => void) | undefined;
  /** The clock of access entries. Default `() => new Date()`. */
  now?: () => Date;
}

/** Path and query of an absolute URL, as the access log shows them. */
function pathAndQueryOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  return start < 0 ? "/" : url.slice(start);
}

/**
 * Wraps the public handler: makes each request's context (`route`), counts
 * the request as in flight, then by status class and latency (to the
 * response headers; a streamed body is not waited for), and writes the
 * access log line from the context the handler completed.
 *
 * @example
 * ```ts
 * Deno.serve(meterRequests(handler, { metrics, route: handler.route }));
 * ```
 */
export function meterRequests(
  handler: ContextHandler,
  options: MeterOptions,
): Handler {
  const {
    metrics,
    route,
    access,
    now = () => new Date(),
  } = options;
  return async (req, info) => {
    const ctx = route(req, info);
    const worker = ctx.worker;
    const meter = metrics.requestMeter(worker);
    meter.started();
    let status = 500;
    let res: Response | undefined;
    try {
      res = await handler(req, info, ctx);
      status = res.status;
    } finally {
      const seconds = (performance.now() - ctx.started) / 1000;
      meter.finished(status, seconds);
      if (worker === "static") metrics.staticResponse(status);
      // Headers are read only for the access log: touching them costs on the hot path.
      if (access) {
        const answer = res;
        const header = answer === undefined
          ? undefined
          : ctx.headersOf(answer) ??
            ((name: string) => answer.headers.get(name));
        const length = header?.("content-length");
        const entry: AccessEntry = {
          time: now(),
          requestId: header?.("x-request-id") ?? ctx.requestId ??
            req.headers.get("x-request-id") ?? "-",
          client: info.remoteAddr.hostname,
          method: req.method,
          path: pathAndQueryOf(req.url),
          worker,
          status,
          bytes: req.method === "HEAD" ? 0 : Number(length ?? 0) || 0,
          ms: Math.round(seconds * 100_000) / 100,
          referer: req.headers.get("referer") ?? "",
          userAgent: req.headers.get("user-agent") ?? "",
        };
        if (res && length === null && streamed(req, res, worker)) {
          res = countedBody(res, (bytes) => {
            entry.bytes = bytes;
            entry.time = now();
            access(entry);
          });
        } else {
          access(entry);
        }
      }
    }
    return res;
  };
}

/**
 * Whether an answer without Content-Length may carry a body of a length
 * known only once sent. `/_tq/` answers are left alone: reading `res.body`
 * turns a body of bytes into a stream (chunked, off Deno.serve's fast path).
 */
function streamed(req: Request, res: Response, worker: string): boolean {
  return req.method !== "HEAD" && worker !== "_tq" && res.status !== 101 &&
    res.status !== 204 && res.status !== 304;
}

/**
 * The same answer, its body counted on the way out; `done` gets the bytes
 * once it ended, failed or the client went away (nginx logs then, too).
 */
function countedBody(res: Response, done: (bytes: number) => void): Response {
  const body = res.body;
  if (!body) {
    done(0);
    return res;
  }
  let bytes = 0;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    done(bytes);
  };
  const counted = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.byteLength;
        controller.enqueue(chunk);
      },
      flush: end,
      cancel: end,
    }),
  );
  return new Response(counted, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}
