import { resolve } from "node:path";
import { type Config, restartOnlyChanges } from "../config/mod.ts";
import { type Compressor, createCompressor } from "../compress/mod.ts";
import type { Logger } from "../log/mod.ts";
import { createStaticHandler, type StaticHandler } from "../static/mod.ts";

/** The static file handler and the compression stage, rebuilt when their config changes. */
export interface ServedFiles {
  /** The static handler in force, when `server.static.enabled`. */
  readonly static: StaticHandler | undefined;
  /** The compression stage in force, when `server.compression.enabled`. */
  readonly compress: Compressor | undefined;
  /**
   * Applies a reloaded config: new `server.static.*` (but `enabled` and
   * `url_prefix`) or `server.compression.*` values replace the handler or the
   * stage (the cache starts empty); `enabled` and `url_prefix` are routing and
   * take effect at the next server start, which is logged as a warning.
   */
  reconfigure(config: Config): void;
}

function makeStatic(
  config: Config,
  root: string,
  log: Logger,
): StaticHandler | undefined {
  const s = config.server.static;
  const c = config.server.compression;
  if (!s.enabled) return undefined;
  return createStaticHandler({
    workersDir: resolve(root, config.workers.workers_dir),
    urlPrefix: s.url_prefix,
    maxAgeSeconds: s.cache_max_age_seconds,
    logger: log,
    cacheMaxBytes: s.cache_max_bytes,
    cacheFileMaxBytes: s.cache_file_max_bytes,
    revalidateMs: s.revalidate_ms,
    compress: c.enabled,
    compressMinBytes: c.min_bytes,
    compressTypes: c.types,
  });
}

function makeCompressor(config: Config): Compressor | undefined {
  const c = config.server.compression;
  return c.enabled
    ? createCompressor({ minBytes: c.min_bytes, types: c.types })
    : undefined;
}

function settingsOf(config: Config): string {
  return JSON.stringify([
    config.server.static,
    config.server.compression,
    config.workers.workers_dir,
  ]);
}

/** Options of {@linkcode servedFiles}. */
export interface ServedFilesOptions {
  /** Project root (absolute): `workers.workers_dir` is resolved against it. */
  root: string;
  /** Logger of the static handler and of applied or deferred settings. */
  logger: Logger;
}

/** Builds the static handler and compression stage of `config`. */
export function servedFiles(
  config: Config,
  options: ServedFilesOptions,
): ServedFiles {
  const { root, logger: log } = options;
  let current = config;
  let serveStatic = makeStatic(config, root, log);
  let compress = makeCompressor(config);
  return {
    get static() {
      return serveStatic;
    },
    get compress() {
      return compress;
    },
    reconfigure(next) {
      if (settingsOf(next) === settingsOf(current)) return;
      for (const key of restartOnlyChanges(current, next)) {
        log.warn("config change takes effect at the next server start", {
          key,
        });
      }
      // Routing keys stay as the listener was opened with; the rest applies now.
      const applied: Config = {
        ...next,
        server: {
          ...next.server,
          static: {
            ...next.server.static,
            enabled: config.server.static.enabled,
            url_prefix: config.server.static.url_prefix,
          },
        },
      };
      serveStatic = makeStatic(applied, root, log);
      compress = makeCompressor(applied);
      current = next;
      log.info("static and compression settings applied");
    },
  };
}
