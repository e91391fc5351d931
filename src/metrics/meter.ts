import type { AccessEntry } from "../log/mod.ts";
import { rawPathOf } from "../routes/mod.ts";
import type { ServerMetrics } from "./server_metrics.ts";

type Handler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** Options for {@linkcode meterRequests}. */
export interface MeterOptions {
  /** Where the counters go. */
  metrics: ServerMetrics;
  /** Names what answers a raw path: a worker name, `static`, `_tq` or `-`. */
  classify: (pathname: string) => string;
  /** Receives one entry per answered request (the access log). Default: none. */
  access?: ((entry: AccessEntry) => void) | undefined;
  /** The clock of access entries. Default `() => new Date()`. */
  now?: () => Date;
  /**
   * Reads an answer's headers for the access log without touching
   * `res.headers` (e.g. `proxiedHeaders`); undefined for an answer it does
   * not know, whose `res.headers` is read.
   */
  headersOf?: (res: Response) => ((name: string) => string | null) | undefined;
  /**
   * The request id a request was forwarded with (e.g. `proxiedRequestId`),
   * for the access log when the answer carries none.
   */
  requestIdOf?: (req: Request) => string | undefined;
}

/** Path and query of an absolute URL, as the access log shows them. */
function pathAndQueryOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  return start < 0 ? "/" : url.slice(start);
}

/**
 * Wraps the public handler: counts each request as in flight, then by status
 * class and latency (to the response headers; a streamed body is not
 * waited for), and writes the access log line.
 *
 * @example
 * ```ts
 * Deno.serve(meterRequests(handler, { metrics, classify: (p) => table.match(p)?.name ?? "-" }));
 * ```
 */
export function meterRequests(
  handler: Handler,
  options: MeterOptions,
): Handler {
  const {
    metrics,
    classify,
    access,
    now = () => new Date(),
    headersOf = () => undefined,
    requestIdOf = () => undefined,
  } = options;
  return async (req, info) => {
    const started = performance.now();
    const worker = classify(rawPathOf(req.url));
    const meter = metrics.requestMeter(worker);
    meter.started();
    let status = 500;
    let res: Response | undefined;
    try {
      res = await handler(req, info);
      status = res.status;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      meter.finished(status, seconds);
      if (worker === "static") metrics.staticResponse(status);
      // Headers are read only for the access log: touching them costs on the hot path.
      if (access) {
        const answer = res;
        const header = answer === undefined
          ? undefined
          : headersOf(answer) ?? ((name: string) => answer.headers.get(name));
        const length = header?.("content-length");
        const entry: AccessEntry = {
          time: now(),
          requestId: header?.("x-request-id") ?? requestIdOf(req) ??
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
