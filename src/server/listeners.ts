import { join, resolve } from "node:path";
import type { Config } from "../config/mod.ts";
import { createAdminHandler, type ServerStatusJson } from "../admin/mod.ts";
import type { DevHooks } from "../dev_contract.ts";
import type { Logger } from "../log/mod.ts";
import { createProxy, errorResponse, type ProxyHandler } from "../proxy/mod.ts";
import type { ReloadReport } from "../reload/mod.ts";
import type { RouteTable } from "../routes/mod.ts";
import { createCompressor } from "../compress/mod.ts";
import { createStaticHandler, type StaticHandler } from "../static/mod.ts";
import { createPublicHandler } from "./handler.ts";

/** Options for {@linkcode openListeners}. */
export interface ListenersOptions {
  /** Project root (absolute). */
  root: string;
  /** The config in force. */
  config: Config;
  /** `--port`, overriding `server.port`. */
  port?: number | undefined;
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
}

/** The server's two listeners and the proxy behind the public one. */
export interface Listeners {
  /** The public listener. */
  public: Deno.HttpServer<Deno.NetAddr>;
  /** The admin listener, when `server.admin.enabled`. */
  admin: Deno.HttpServer<Deno.NetAddr> | undefined;
  /** The reverse proxy (its keep-alive pool closes with {@linkcode ProxyHandler.close}). */
  proxy: ProxyHandler;
  /** The static file handler and its cache, when `server.static.enabled`. */
  static: StaticHandler | undefined;
}

/**
 * Binds the public listener (static files, dev hooks, proxy) and the admin
 * listener. Both bind with `reusePort`, so a self-upgrade successor can bind
 * the same ports while this server still serves (SPEC §6).
 */
export function openListeners(options: ListenersOptions): Listeners {
  const { config, root, table, logger: log, dev, closing } = options;
  const port = options.port ?? config.server.port;
  const staticCfg = config.server.static;
  const proxy = createProxy(table, {
    logger: log,
    idleTimeoutMs: config.workers.default.idle_timeout_seconds * 1000,
  });
  const compression = config.server.compression;
  const serveStatic = staticCfg.enabled
    ? createStaticHandler({
      workersDir: resolve(root, config.workers.workers_dir),
      urlPrefix: staticCfg.url_prefix,
      maxAgeSeconds: staticCfg.cache_max_age_seconds,
      logger: log,
      cacheMaxBytes: staticCfg.cache_max_bytes,
      cacheFileMaxBytes: staticCfg.cache_file_max_bytes,
      revalidateMs: staticCfg.revalidate_ms,
      compress: compression.enabled,
      compressMinBytes: compression.min_bytes,
      compressTypes: compression.types,
    })
    : undefined;
  const handler = createPublicHandler({
    proxy,
    serveStatic,
    staticPrefix: staticCfg.url_prefix,
    dev,
    compress: compression.enabled
      ? createCompressor({
        minBytes: compression.min_bytes,
        types: compression.types,
      })
      : undefined,
    notFound: (req) => errorResponse(req, 404, "Not found"),
    closing,
  });
  const server = Deno.serve({
    hostname: config.server.host,
    port,
    reusePort: true,
    onListen: () => {},
    onError: (err) => {
      log.error("request failed", { error: err });
      return new Response("Internal server error\n", { status: 500 });
    },
  }, handler);
  const admin = config.server.admin;
  let adminServer: Deno.HttpServer<Deno.NetAddr> | undefined;
  if (admin.enabled) {
    adminServer = Deno.serve(
      {
        hostname: admin.host,
        port: admin.port,
        reusePort: true,
        onListen: () => {},
      },
      createAdminHandler({
        status: options.status,
        reload: options.reload,
        dashboardDir: options.dashboardDir ??
          join(root, "server", "public", "admin"),
      }),
    );
  }
  return { public: server, admin: adminServer, proxy, static: serveStatic };
}

/**
 * Fails when something already listens on `host:port`: with `reusePort` a
 * second server would otherwise share the port silently.
 *
 * @throws {Deno.errors.AddrInUse} Naming the port and host.
 */
export async function assertPortFree(
  host: string,
  port: number,
): Promise<void> {
  if (port === 0) return;
  const target = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  try {
    const conn = await Deno.connect({ hostname: target, port });
    conn.close();
  } catch {
    return;
  }
  throw new Deno.errors.AddrInUse(
    `Port ${port} on "${host}" is already in use by another process`,
  );
}
