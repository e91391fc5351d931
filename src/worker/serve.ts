import { createLogger, type Logger } from "../log/logger.ts";
import { type WorkerEnv, workerEnv } from "./env.ts";
import { clearPrivateCache } from "./private.ts";
import { clearViewCache } from "./render.ts";

/** Anything with a `fetch` method, such as a Hono app. */
export interface FetchApp {
  /** Answers one request; `info` is Deno's connection info (Hono sees it as `c.env`). */
  fetch(
    req: Request,
    info: Deno.ServeHandlerInfo,
  ): Response | Promise<Response>;
}

/** A plain fetch handler. */
export type FetchHandler = (
  req: Request,
  info: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

/** Options for {@linkcode serve}. */
export interface ServeOptions {
  /** Signal on which the worker reloads `private/`, announced by `X-TQ-Reload`. Default `"SIGHUP"`; `null` disables it. */
  reloadSignal?: Deno.Signal | null;
  /** Called on the reload signal after the private and view caches are cleared. Default: none. */
  onReload?: () => void | Promise<void>;
  /** Health check answered on the health path. Default: always healthy. */
  health?: () => boolean | Promise<boolean>;
  /** Settings to use. Default: {@linkcode workerEnv}(). */
  env?: WorkerEnv;
  /** Exit when stdin reaches EOF (the server died). Default: when stdin is a pipe or socket, as under tqserver. */
  watchStdin?: boolean;
  /** Call `Deno.exit(0)` once a stop signal or stdin EOF has drained the server. Default `true`. */
  exitOnStop?: boolean;
  /** Logger for the listen line and lifecycle events. Default: stderr at level info. */
  logger?: Logger;
}

/** A running worker server. */
export interface WorkerServer {
  /** The settings in use. */
  readonly env: WorkerEnv;
  /** The address listened on. */
  readonly addr: Deno.NetAddr;
  /** Resolves when the server has stopped and in-flight requests have finished. */
  readonly finished: Promise<void>;
  /** Stops accepting, waits for in-flight requests, and removes the signal listeners. */
  shutdown(): Promise<void>;
}

/** How long in-flight requests may run after stdin EOF; nobody will SIGKILL us then. */
const EOF_GRACE_MS = 5_000;
const STOP_SIGNALS: Deno.Signal[] = ["SIGTERM", "SIGINT"];
const originals = new WeakMap<Request, string>();

/**
 * The URL the request had on the wire, before {@linkcode serve} made it
 * relative to the worker's route (`/api/users/7` where the app sees `/7`).
 */
export function originalUrl(req: Request): string {
  return originals.get(req) ?? req.url;
}

/**
 * Makes a request relative to the route. We rewrite the Request URL rather
 * than mount with Hono's `route()`: it works for any fetch handler, the same
 * app runs standalone at `/` and under any route set in server.yaml without a
 * code change, and the app's own 404 and middleware see exactly its paths.
 * Paths outside the route pass unchanged (only a direct hit sends them).
 */
function relativeTo(route: string, req: Request): Request {
  if (route === "/") return req;
  const url = new URL(req.url);
  const path = url.pathname;
  if (path !== route && !path.startsWith(route + "/")) return req;
  url.pathname = path.slice(route.length) || "/";
  const headers = new Headers(req.headers);
  headers.set("x-forwarded-prefix", route);
  const rewritten = new Request(url, {
    method: req.method,
    headers,
    body: req.body,
    redirect: req.redirect,
  });
  // The client's abort signal is forwarded lazily: reading `req.signal` makes
  // Deno.serve log a one-time legacy-abort warning, which only an app that
  // actually uses the signal should trigger.
  Object.defineProperty(rewritten, "signal", {
    get: () => req.signal,
    configurable: true,
  });
  originals.set(rewritten, req.url);
  return rewritten;
}

function stdinIsPipe(): boolean {
  try {
    const info = Deno.statSync("/dev/stdin");
    return info.isFifo === true || info.isSocket === true;
  } catch {
    return false;
  }
}

async function untilStdinEof(): Promise<void> {
  const buf = new Uint8Array(512);
  try {
    while ((await Deno.stdin.read(buf)) !== null) {
      // The server never writes; whatever arrives is ignored.
    }
  } catch {
    // A closed or broken stdin means the same as EOF: the server is gone.
  }
}

/**
 * Serves a Hono app or fetch handler as a tqserver worker (SPEC §4): listens
 * on `127.0.0.1:{TQ_PORT}`, answers the health path with `X-TQ-Reload`, hands
 * the app paths relative to its route (see {@linkcode originalUrl}), reloads
 * `private/` on the reload signal, drains and exits 0 on SIGTERM or SIGINT,
 * and exits when stdin reaches EOF.
 *
 * @throws {Deno.errors.AddrInUse} When the port is taken.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { serve } from "../../../src/worker/mod.ts";
 *
 * const app = new Hono();
 * app.get("/", (c) => c.text("hello"));
 * serve(app);
 * ```
 */
export function serve(
  app: FetchApp | FetchHandler,
  options: ServeOptions = {},
): WorkerServer {
  const {
    reloadSignal = "SIGHUP",
    onReload,
    health = () => true,
    env = workerEnv(),
    watchStdin = stdinIsPipe(),
    exitOnStop = true,
    logger = createLogger(),
  } = options;
  const handle: FetchHandler = typeof app === "function"
    ? app
    : (req, info) => app.fetch(req, info);
  const fields = { worker: env.name, pid: Deno.pid };

  async function healthResponse(req: Request): Promise<Response> {
    let ok = false;
    try {
      ok = await health();
    } catch (err) {
      logger.warn("health check failed", { ...fields, error: err });
    }
    const headers = new Headers({ "cache-control": "no-store" });
    if (reloadSignal) headers.set("x-tq-reload", reloadSignal);
    const body = req.method === "HEAD" ? null : ok ? "ok\n" : "unhealthy\n";
    return new Response(body, { status: ok ? 200 : 503, headers });
  }

  const listeners: [Deno.Signal, () => void][] = [];
  function listen(signal: Deno.Signal, fn: () => void): void {
    Deno.addSignalListener(signal, fn);
    listeners.push([signal, fn]);
  }

  if (reloadSignal) {
    // Installed before listening: the health header promises it is handled.
    listen(reloadSignal, () => {
      clearPrivateCache();
      clearViewCache();
      Promise.resolve()
        .then(() => onReload?.())
        .then(
          () =>
            logger.info("private reloaded", {
              ...fields,
              signal: reloadSignal,
            }),
          (err) => logger.error("reload failed", { ...fields, error: err }),
        );
    });
  }

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: env.port,
    onListen: (addr) =>
      logger.info("worker listening", {
        ...fields,
        addr: `${addr.hostname}:${addr.port}`,
        route: env.route,
        mode: env.mode,
      }),
    onError: (err) => {
      logger.error("request failed", { ...fields, error: err });
      return new Response("Internal Server Error\n", { status: 500 });
    },
  }, (req, info) => {
    const { pathname } = new URL(req.url);
    if (
      pathname === env.healthPath &&
      (req.method === "GET" || req.method === "HEAD")
    ) {
      return healthResponse(req);
    }
    return handle(relativeTo(env.route, req), info);
  });

  let stopping: Promise<void> | undefined;
  function shutdown(): Promise<void> {
    stopping ??= (async () => {
      // Listeners stay while draining: a repeated SIGTERM or a late SIGHUP
      // must not kill the process with its default action mid-request.
      await server.shutdown();
      for (const [signal, fn] of listeners) {
        Deno.removeSignalListener(signal, fn);
      }
    })();
    return stopping;
  }

  async function stop(reason: string, graceMs?: number): Promise<void> {
    if (stopping) return;
    logger.info("worker stopping", { ...fields, reason });
    const done = shutdown();
    if (graceMs === undefined) {
      await done;
    } else {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        done,
        new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs)),
      ]);
      clearTimeout(timer);
    }
    logger.info("worker stopped", { ...fields, reason });
    if (exitOnStop) Deno.exit(0);
  }

  for (const signal of STOP_SIGNALS) {
    listen(signal, () => void stop(signal.toLowerCase()));
  }
  if (watchStdin) {
    untilStdinEof().then(() => stop("stdin-eof", EOF_GRACE_MS));
  }

  return {
    env,
    addr: server.addr,
    finished: server.finished,
    shutdown,
  };
}
