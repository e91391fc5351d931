/**
 * The per-request context: what the public handler decided about a request
 * (its route, matched once; the fields the proxy reads), what the proxy
 * forwarded (request id, client, Host) and what it answered (the answer's
 * header pairs), for every stage before and after the proxy — compression,
 * event-stream tracking, metrics and the access log — without tags on
 * `Request` or `Response`.
 */
import type { Upstream } from "../routes/route_table.ts";
import {
  type ForwardInit,
  pathAndQuery,
  readRequestFields,
  type RequestFields,
  routingPath,
} from "./_headers.ts";

/** What a {@linkcode RequestContext} matches a request's path against. */
export interface RouteMatcher {
  /** The upstream whose route is the longest prefix of `pathname` on a segment boundary. */
  match(pathname: string): Upstream | undefined;
}

/** What answers a request: the dev hooks, the static files or a worker through the proxy. */
export type Stage = "_tq" | "static" | "worker";

/** A handler of the public port that takes the request's context from the stage before it. */
export type ContextHandler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ctx: RequestContext,
) => Response | Promise<Response>;

/** Reads a header of an answer by lower-case name, as `Headers.get` would. */
export type HeaderReader = (name: string) => string | null;

/**
 * One request on its way through the server: made by the public handler (or
 * by the proxy for a request handed to it alone), then read and completed by
 * the stages. One object per request, all fields set in the constructor so
 * every context has the same shape.
 */
export class RequestContext {
  /** `performance.now()` when the request came in: the start of its latency. */
  readonly started: number = performance.now();
  /** The connection the request came on (remote address, `completed`). */
  readonly info: Deno.ServeHandlerInfo<Deno.NetAddr>;
  /** What answers: `_tq` (dev hooks), `static` (files) or `worker` (the proxy). */
  readonly stage: Stage;
  /** Names what answers, for metrics and logs: a worker's name, `static`, `_tq`, or `-` for no route. */
  worker: string;
  /** The raw path, exactly as the client sent it (`rawPathOf`), as the public handler read it. */
  path = "";
  /** The worker route that answers, matched once; undefined when none does. */
  upstream: Upstream | undefined = undefined;
  /** Path and query to forward, exactly as the client sent them ("" when not proxied). */
  target = "";
  /**
   * The request's fields the proxy acts on (Host, framing, forwarding), read
   * once; undefined for a request the proxy does not take.
   */
  fields: RequestFields | undefined = undefined;
  /**
   * Who the request is forwarded for (client address, Host, request id), set
   * by the proxy when it forwards the request.
   */
  forwarding: ForwardInit | undefined = undefined;
  #answer: Response | undefined = undefined;
  #pairs: readonly [string, string][] | undefined = undefined;
  #length = -1;
  #reader: HeaderReader | undefined = undefined;

  /**
   * Starts the context of a request that just came in.
   *
   * @param info The connection, as `Deno.serve` hands it to the handler.
   * @param stage What answers. Default `worker`, whose `worker` is `-` until
   *   a route is matched (see {@linkcode workerContext}); otherwise `worker`
   *   is the stage's name.
   */
  constructor(
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    stage: Stage = "worker",
  ) {
    this.info = info;
    this.stage = stage;
    this.worker = stage === "worker" ? "-" : stage;
  }

  /**
   * The `X-Request-Id` the proxy sent to the worker (the client's, or the one
   * it made), for the access log: the answer does not carry it unless the
   * worker sent it back. Undefined for a request the proxy did not forward.
   */
  get requestId(): string | undefined {
    return this.forwarding?.requestId;
  }

  /**
   * True when the request has no `Host` (RFC 9112 §3.2: answered 400), read
   * from the fields when the proxy takes the request.
   */
  hostMissing(req: Request): boolean {
    const fields = this.fields;
    return fields === undefined
      ? !req.headers.has("host")
      : fields.host === null;
  }

  /**
   * Records the answer the proxy made from a worker's head, with the header
   * pairs it was built from (names lower-case) and, for a body of bytes, its
   * length (`Deno.serve` writes that field itself; it is not among them).
   */
  answered(
    res: Response,
    pairs: readonly [string, string][],
    length: number,
  ): void {
    this.#answer = res;
    this.#pairs = pairs;
    this.#length = length;
  }

  /**
   * Reads the headers of `res` straight from the pairs the proxy built it
   * from, when `res` is the proxy's own answer (repeated fields joined with
   * ", ", as `Headers.get` does; `content-length` is the length of a body of
   * bytes); undefined for any other Response, whose `res.headers` must be
   * read. The stages after the proxy read through it: touching `res.headers`
   * makes Deno.serve drop the answer's native headers, about 2 µs of CPU per
   * request.
   */
  headersOf(res: Response): HeaderReader | undefined {
    if (res !== this.#answer || this.#answer === undefined) return undefined;
    return this.#reader ??= readerOf(this.#pairs!, this.#length);
  }
}

/**
 * Reads header pairs as `Headers.get` would. The reader holds the pairs and
 * the length only, never the context: a stage may keep it as long as the
 * answer's body streams, and through the context it would keep the whole
 * request reachable (measured: ~450 KB promoted per scavenge under load).
 */
function readerOf(
  pairs: readonly [string, string][],
  length: number,
): HeaderReader {
  return (name) => {
    let value: string | null = null;
    for (const pair of pairs) {
      if (pair[0] === name) {
        value = value === null ? pair[1] : value + ", " + pair[1];
      }
    }
    if (value === null && length >= 0 && name === "content-length") {
      return String(length);
    }
    return value;
  };
}

/** Options for {@linkcode workerContext}. */
export interface WorkerContextOptions {
  /** The route table. */
  routes: RouteMatcher;
}

/**
 * The context of a request for the workers: its route matched, once, by
 * `routes.match` on the routing path (dot segments resolved, as the worker
 * will see them), and its fields read once.
 *
 * @param req The request as `Deno.serve` hands it over.
 * @param info Its connection.
 */
export function workerContext(
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  options: WorkerContextOptions,
): RequestContext {
  const target = pathAndQuery(req.url);
  const upstream = options.routes.match(routingPath(target));
  const ctx = new RequestContext(info);
  if (upstream !== undefined) ctx.worker = upstream.name;
  ctx.upstream = upstream;
  ctx.target = target;
  ctx.fields = readRequestFields(req.headers);
  return ctx;
}
