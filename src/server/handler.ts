import type { OpenStreams } from "./streams.ts";
import type { DevHooks } from "../dev_contract.ts";
import {
  type ErrorHandler,
  errorResponse,
  type HeaderReader,
  MISSING_HOST,
  RequestContext,
  type RouteMatcher,
  workerContext,
} from "../proxy/mod.ts";
import { rawPathOf, routeMatches } from "../routes/mod.ts";

export type { DevHooks };

type Info = Deno.ServeHandlerInfo<Deno.NetAddr>;

/** Options for {@linkcode createPublicHandler}. */
export interface PublicHandlerOptions {
  /**
   * The reverse proxy to the workers; it gets the request's context (route
   * matched, Host checked) and answers 404 when no route matched.
   */
  proxy: (req: Request, info: Info, ctx: RequestContext) => Promise<Response>;
  /** The route table the proxy forwards by: each request is matched once, here. */
  routes: RouteMatcher;
  /** Static file handler, when `server.static.enabled`. */
  serveStatic?: ((req: Request) => Response | Promise<Response>) | undefined;
  /** URL prefix of static files. Default `/static`. */
  staticPrefix?: string;
  /** Dev hooks; absent in prod. */
  dev?: DevHooks | undefined;
  /**
   * Compression of workers' answers (`server.compression`), a stage after the
   * proxy; `header` reads the answer's headers (see `RequestContext.headersOf`).
   */
  compress?:
    | ((
      req: Request,
      res: Response,
      header?: HeaderReader,
    ) => Response | Promise<Response>)
    | undefined;
  /** Answers `/_tq/` requests when there are no dev hooks. */
  notFound: (req: Request) => Response;
  /** True once the server hands over or stops: answers carry `Connection: close`. */
  closing?: () => boolean;
  /** Tracks event streams (live reload, workers' SSE) so a stopping server can end them. */
  streams?: OpenStreams | undefined;
  /** Builds the 400 of a request without Host. Default: `errorResponse`. */
  onError?: ErrorHandler;
}

/**
 * The public port's handler: takes the request's context from the stage
 * before it (metrics), or makes it with {@linkcode PublicHandler.route}.
 */
export type PublicHandler =
  & ((req: Request, info: Info, ctx?: RequestContext) => Promise<Response>)
  & {
    /**
     * The request's context: what answers it (`/_tq/`, static files or a
     * worker), its route matched once. Cheap; made before the handler runs.
     */
    route(req: Request, info: Info): RequestContext;
  };

function withConnectionClose(res: Response): Response {
  try {
    res.headers.set("connection", "close");
    return res;
  } catch {
    // Immutable headers (e.g. a fetch Response): copy them.
    const headers = new Headers(res.headers);
    headers.set("connection", "close");
    return new Response(res.body, {
      status: res.status,
      statusText: res.statusText,
      headers,
    });
  }
}

/**
 * The public port's request handler: `/_tq/` (dev), static files, then the
 * proxy. Keeps the hot path to one string scan and one route match before
 * the proxy.
 */
export function createPublicHandler(
  options: PublicHandlerOptions,
): PublicHandler {
  const {
    proxy,
    routes,
    serveStatic,
    staticPrefix = "/static",
    dev,
    compress,
    notFound,
    closing = () => false,
    streams,
    onError = errorResponse,
  } = options;
  const matching = { routes };

  function route(req: Request, info: Info): RequestContext {
    const path = rawPathOf(req.url);
    let ctx: RequestContext;
    if (routeMatches("/_tq", path)) ctx = new RequestContext(info, "_tq");
    else if (serveStatic !== undefined && routeMatches(staticPrefix, path)) {
      ctx = new RequestContext(info, "static");
    } else ctx = workerContext(req, info, matching);
    ctx.path = path;
    return ctx;
  }

  async function handle(
    req: Request,
    info: Info,
    ctx: RequestContext = route(req, info),
  ): Promise<Response> {
    // RFC 9112 §3.2: a request without Host is answered 400. Deno.serve does
    // not expose the HTTP version, so an HTTP/1.0 one is refused too. Checked
    // once, here, for every stage (the proxy's from the fields it reads anyway).
    if (ctx.hostMissing(req)) return onError(req, MISSING_HOST);
    const path = ctx.path;
    let res: Response;
    if (ctx.stage === "_tq") {
      res = dev ? await dev.handle(req, path) : notFound(req);
      if (streams) res = streams.track(res);
    } else if (ctx.stage === "static") {
      const served = serveStatic!(req);
      res = served instanceof Promise ? await served : served;
    } else {
      const early = dev?.intercept?.(path, req);
      res = early ?? await proxy(req, info, ctx);
      if (dev && !early) res = dev.transform(res, req);
      // The stages read a proxied answer's headers from its pairs: touching
      // `res.headers` costs Deno.serve its native headers (~2 µs a request).
      const proxied = res;
      const header = ctx.headersOf(res);
      if (compress) {
        const compressed = compress(req, res, header);
        // Most answers pass through as they are: no extra turn for them.
        res = compressed instanceof Promise ? await compressed : compressed;
      }
      if (streams) {
        res = streams.track(res, res === proxied ? header : undefined);
      }
    }
    return closing() ? withConnectionClose(res) : res;
  }

  return Object.assign(handle, { route });
}
