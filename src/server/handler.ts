import type { OpenStreams } from "./streams.ts";
import type { DevHooks } from "../dev_contract.ts";
import { errorResponse, proxiedHeaders } from "../proxy/mod.ts";
import { rawPathOf, routeMatches } from "../routes/mod.ts";

export type { DevHooks };

type Handler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** Options for {@linkcode createPublicHandler}. */
export interface PublicHandlerOptions {
  /** The reverse proxy to the workers; it answers a request without Host 400 itself. */
  proxy: Handler;
  /** Static file handler, when `server.static.enabled`. */
  serveStatic?: ((req: Request) => Response | Promise<Response>) | undefined;
  /** URL prefix of static files. Default `/static`. */
  staticPrefix?: string;
  /** Dev hooks; absent in prod. */
  dev?: DevHooks | undefined;
  /**
   * Compression of workers' answers (`server.compression`), a stage after the
   * proxy; `header` reads the answer's headers (see `proxiedHeaders`).
   */
  compress?:
    | ((
      req: Request,
      res: Response,
      header?: (name: string) => string | null,
    ) => Response | Promise<Response>)
    | undefined;
  /** Answers `/_tq/` requests when there are no dev hooks. */
  notFound: (req: Request) => Response;
  /** True once the server hands over or stops: answers carry `Connection: close`. */
  closing?: () => boolean;
  /** Tracks event streams (live reload, workers' SSE) so a stopping server can end them. */
  streams?: OpenStreams | undefined;
}

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
 * proxy. Keeps the hot path to one string scan before the proxy.
 */
export function createPublicHandler(options: PublicHandlerOptions): Handler {
  const {
    proxy,
    serveStatic,
    staticPrefix = "/static",
    dev,
    compress,
    notFound,
    closing = () => false,
    streams,
  } = options;
  return async (req, info) => {
    const pathname = rawPathOf(req.url);
    const tq = routeMatches("/_tq", pathname);
    const files = !tq && serveStatic !== undefined &&
      routeMatches(staticPrefix, pathname);
    // RFC 9112 §3.2: a request without Host is answered 400. Deno.serve does
    // not expose the HTTP version, so an HTTP/1.0 one is refused too. The
    // proxy checks it in the fields it reads anyway (a `has` here costs every
    // proxied request), so here only for what the proxy does not answer.
    if ((tq || files || dev !== undefined) && !req.headers.has("host")) {
      return errorResponse(req, 400, "The request has no Host header");
    }
    let res: Response;
    if (tq) {
      res = dev ? await dev.handle(req, pathname) : notFound(req);
      if (streams) res = streams.track(res);
    } else if (files) {
      const served = serveStatic!(req);
      res = served instanceof Promise ? await served : served;
    } else {
      const early = dev?.intercept?.(pathname, req);
      res = early ?? await proxy(req, info);
      if (dev && !early) res = dev.transform(res, req);
      // The stages read a proxied answer's headers from its pairs: touching
      // `res.headers` costs Deno.serve its native headers (~2 µs a request).
      const proxied = res;
      const header = proxiedHeaders(res);
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
  };
}
