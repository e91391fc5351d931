import { join, resolve } from "node:path";
import type { Config } from "../config/mod.ts";
import {
  type AdminHandler,
  createAdminHandler,
  type EventLog,
  type ServerStatusJson,
  type WorkerOutputJson,
} from "../admin/mod.ts";
import type { DevHooks } from "../dev_contract.ts";
import { AccessLog, type Logger } from "../log/mod.ts";
import { meterRequests, type ServerMetrics } from "../metrics/mod.ts";
import {
  createProxy,
  errorResponse,
  type ProxyHandler,
  type ProxyLimits,
} from "../proxy/mod.ts";
import type { ReloadReport } from "../reload/mod.ts";
import type { RouteTable } from "../routes/mod.ts";
import type { StaticHandler } from "../static/mod.ts";
import { servedFiles } from "./served_files.ts";
import { createPublicHandler } from "./handler.ts";
import type { OpenStreams } from "./streams.ts";
import { describeProcess, portHolder } from "./_port_owner.ts";

/** Options for {@linkcode openListeners}. */
export interface ListenersOptions {
  /** Project root (absolute). */
  root: string;
  /** The config in force. */
  config: Config;
  /** `--port`, overriding `server.port`. */
  port?: number | undefined;
  /** Event streams of both listeners, ended when the server stops. */
  streams: OpenStreams;
  /** The route table the proxy reads. */
  table: RouteTable;
  /** Logger. */
  logger: Logger;
  /** Dev hooks; absent in prod. */
  dev?: DevHooks | undefined;
  /** True once the server hands over or stops. */
  closing: () => boolean;
  /** `/api/status` body. */
  status: () => ServerStatusJson;
  /** `POST /api/reload`. */
  reload: () => Promise<ReloadReport>;
  /** Folder of the admin dashboard. Default `{root}/server/public/admin`. */
  dashboardDir?: string | undefined;
  /** `POST /api/workers/{name}/restart`: replaces the worker (reason `manual`). */
  restart: (name: string) => Promise<boolean>;
  /** `GET /api/workers/{name}/output`: a worker's last output lines. Default: none. */
  output?: (name: string) => WorkerOutputJson | undefined;
  /** The timeline of `/api/events`. */
  events: EventLog;
  /** Request counters (fed around the public handler) and `/metrics`. */
  metrics: ServerMetrics;
  /** The clock of access log lines. Default `() => new Date()`. */
  now?: () => Date;
}

/** The server's two listeners and the proxy behind the public one. */
export interface Listeners {
  /** The public listener. */
  public: Deno.HttpServer<Deno.NetAddr>;
  /** The admin listener, when `server.admin.enabled`. */
  admin: Deno.HttpServer<Deno.NetAddr> | undefined;
  /** The reverse proxy (its keep-alive pool closes with {@linkcode ProxyHandler.close}). */
  proxy: ProxyHandler;
  /** The static file handler and its cache in force, when `server.static.enabled`. */
  readonly static: StaticHandler | undefined;
  /** Applies a reloaded config's `server.static.*`, `server.compression.*` and the proxy's limits. */
  reconfigure(config: Config): void;
  /** The access log, when `server.access_log` is set. */
  access: AccessLog | undefined;
  /** The admin handler (its `close()` ends the dashboard streams). */
  adminHandler: AdminHandler | undefined;
}

/**
 * Binds the public listener (static files, dev hooks, proxy) and the admin
 * listener. Both bind with `reusePort`, so a self-upgrade successor can bind
 * the same ports while this server still serves (SPEC §6).
 */
export function openListeners(options: ListenersOptions): Listeners {
  const { config, root, table, logger: log, dev, closing, streams } = options;
  const port = options.port ?? config.server.port;
  const staticCfg = config.server.static;
  // One builder of every error answer of the public port (HTML or JSON).
  const onError = errorResponse;
  const proxy = createProxy(table, {
    logger: log,
    onError,
    idleTimeoutMs: config.workers.default.idle_timeout_seconds * 1000,
    ...proxyLimits(config, root),
  });
  const served = servedFiles(config, { root, logger: log });
  const handler = createPublicHandler({
    proxy,
    routes: table,
    serveStatic: served.static && ((req) => served.static!(req)),
    staticPrefix: staticCfg.url_prefix,
    dev,
    compress: (req, res, header) =>
      served.compress ? served.compress(req, res, header) : res,
    notFound: (req) => onError(req, { status: 404, message: "Not found" }),
    closing,
    streams,
    onError,
  });
  const { metrics, now } = options;
  const access = config.server.access_log
    ? new AccessLog(resolve(root, config.server.access_log), {
      format: config.server.access_log_format,
      ...(now ? { now } : {}),
      onError: (err) =>
        log.error("access log unavailable", {
          error: err,
          cause: (err as Error).cause,
        }),
    })
    : undefined;
  // Counted around everything the public port answers, static files and dev hooks included.
  // The handler's `route` matches each request once, for both.
  const metered = meterRequests(handler, {
    metrics,
    route: handler.route,
    access: access ? (entry) => access.write(entry) : undefined,
    ...(now ? { now } : {}),
  });
  const server = bind(
    config.server.host,
    port,
    portKey(options),
    () =>
      Deno.serve({
        hostname: config.server.host,
        port,
        reusePort: true,
        onListen: () => {},
        onError: (err) => {
          log.error("request failed", { error: err });
          return new Response("Internal server error\n", { status: 500 });
        },
      }, metered),
  );
  const admin = config.server.admin;
  let adminServer: Deno.HttpServer<Deno.NetAddr> | undefined;
  let adminHandler: AdminHandler | undefined;
  if (admin.enabled) {
    adminHandler = createAdminHandler({
      status: options.status,
      reload: options.reload,
      restart: options.restart,
      ...(options.output ? { output: options.output } : {}),
      events: options.events,
      metrics: () => metrics.render(),
      series: () => metrics.series.snapshot(),
      token: admin.token,
      logger: log,
      dashboardDir: options.dashboardDir ??
        join(root, "server", "public", "admin"),
    });
    const handler = adminHandler;
    try {
      adminServer = bind(
        admin.host,
        admin.port,
        "server.admin.port",
        () =>
          Deno.serve(
            {
              hostname: admin.host,
              port: admin.port,
              reusePort: true,
              onListen: () => {},
            },
            handler,
          ),
      );
    } catch (err) {
      server.shutdown().catch(() => {});
      proxy.close();
      throw err;
    }
  }
  return {
    public: server,
    admin: adminServer,
    proxy,
    get static() {
      return served.static;
    },
    reconfigure: (next) => {
      served.reconfigure(next);
      proxy.reconfigure(proxyLimits(next, root));
    },
    access,
    adminHandler,
  };
}

/** The proxy settings a config reload applies in place. */
function proxyLimits(config: Config, root: string): ProxyLimits {
  const tempDir = config.server.body_temp_dir;
  return {
    requestBufferBytes: config.server.request_buffer_bytes,
    maxBodyBytes: config.server.max_body_bytes,
    readTimeoutMs: config.server.read_timeout_seconds * 1000,
    retryWindowMs: config.workers.default.retry_window_ms,
    // Empty: the OS temp dir (what `Deno.makeTempFile` picks).
    bodyTempDir: tempDir ? resolve(root, tempDir) : undefined,
    maxWebSocketMessageBytes: config.server.max_ws_message_bytes,
    trustedProxies: config.server.trusted_proxies,
  };
}

/** The config key (or flag) that set the public port, for error messages. */
export function portKey(options: { port?: number | undefined }): string {
  return options.port === undefined ? "server.port" : "--port";
}

function inUse(host: string, port: number, key: string): Error {
  // Most often our own tqserver, started twice: say which, so it can be stopped.
  const holder = portHolder(port);
  const by = holder ? ` by ${describeProcess(holder)}` : "";
  const hint = holder?.tqserver
    ? `; stop it ("kill ${holder.pid}") or choose another ${key}`
    : "";
  return new Deno.errors.AddrInUse(
    `Port ${port} on "${host}" (${key}) is already in use${by}${hint}`,
  );
}

/** Runs `serve`, turning "address in use" into an error that names port, host and key. */
function bind<T>(host: string, port: number, key: string, serve: () => T): T {
  try {
    return serve();
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      throw Object.assign(inUse(host, port, key), { cause: err });
    }
    throw err;
  }
}

/**
 * Fails when the public port (`port`, else `server.port`) or the enabled
 * admin port is taken: a server checks both before any build or worker starts.
 *
 * @throws {Deno.errors.AddrInUse} Naming the port, host and config key.
 */
export async function assertPortsFree(
  config: Config,
  options: { port?: number | undefined },
): Promise<void> {
  await assertPortFree(
    config.server.host,
    options.port ?? config.server.port,
    portKey(options),
  );
  const admin = config.server.admin;
  if (admin.enabled) {
    await assertPortFree(admin.host, admin.port, "server.admin.port");
  }
}

/**
 * Fails when something already listens on `host:port`: with `reusePort` a
 * second server would otherwise share the port silently.
 *
 * @throws {Deno.errors.AddrInUse} Naming the port, host and config key.
 */
async function assertPortFree(
  host: string,
  port: number,
  key: string,
): Promise<void> {
  if (port === 0) return;
  const target = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  try {
    const conn = await Deno.connect({ hostname: target, port });
    conn.close();
  } catch {
    return;
  }
  throw inUse(host, port, key);
}
