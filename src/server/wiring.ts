import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Config, LoadedConfig, Mode } from "../config/mod.ts";
import {
  EventLog,
  observeRecords,
  type ServerStatusJson,
} from "../admin/mod.ts";
import { Builder, GoBuilder } from "../build/mod.ts";
import {
  createServerLog,
  type Logger,
  type LogRecord,
  observeLogger,
  type ServerLog,
} from "../log/mod.ts";
import { ProcessStats, ServerMetrics } from "../metrics/mod.ts";
import type { StaticCacheStats } from "../static/mod.ts";
import type { Supervisor } from "../supervisor/mod.ts";

/** Options of {@linkcode createBuilders}. */
export interface BuildersOptions {
  /** Project root (absolute): its `deno.json`, when there is one, configures the builds. */
  root: string;
  /** The mode in force: whose `deployment.{mode}.build` applies. */
  mode: Mode;
  /** Logger of the builds. */
  logger: Logger;
}

/** The builders of a server's TypeScript and Go workers, from `deployment.{mode}.build`. */
export function createBuilders(
  config: Config,
  options: BuildersOptions,
): { builder: Builder; goBuilder: GoBuilder } {
  const { root, mode, logger: log } = options;
  const build = config.deployment[mode].build;
  const builder = new Builder({
    format: build.format,
    parallel: build.parallel_builds,
    permissions: build.permissions,
    check: build.check,
    minify: build.minify,
    ...(build.target ? { target: build.target } : {}),
    // Dev bundles in-process and incrementally; prod keeps deno's own formats.
    bundler: mode === "dev" ? "esbuild" : "deno",
    logger: log,
    timeoutMs: build.timeout_ms,
    timeoutKey: `deployment.${mode}.build.timeout_ms`,
    ...(existsSync(join(root, "deno.json"))
      ? { configPath: join(root, "deno.json") }
      : {}),
  });
  const goBuilder = new GoBuilder({
    ldflags: build.ldflags,
    parallel: build.parallel_builds,
    timeoutMs: build.timeout_ms,
    timeoutKey: `deployment.${mode}.build.timeout_ms`,
    logger: log,
  });
  return { builder, goBuilder };
}

/** What the observers read from the server, once it exists. */
export interface ObservedServer {
  status(): ServerStatusJson;
  staticStats(): StaticCacheStats | undefined;
  readonly supervisor: Supervisor;
}

/** Options of {@linkcode createObservers}: the server's own options that matter. */
export interface ObserverOptions {
  /** A logger given by the caller; default: the server log (stdout plus files). */
  logger?: Logger;
  /** Log warnings and errors only. */
  quiet?: boolean;
  /** The clock of log file names and access log lines. */
  now?: () => Date;
}

/**
 * The logger, the `/api/events` timeline and the `/metrics` counters. They
 * exist before the server they report on, so they read it through `ref`.
 */
export function createObservers(
  options: ObserverOptions,
  server: {
    /** The config as first loaded. */
    loaded: LoadedConfig;
    /** Project root (absolute). */
    root: string;
    /** Set to the server once it exists. */
    ref: { server?: ObservedServer };
  },
): {
  events: EventLog;
  metrics: ServerMetrics;
  serverLog: ServerLog | undefined;
  log: Logger;
  /** Further observers of every log record (dev: failures shown on the page). */
  recordListeners: Set<(record: LogRecord) => void>;
  /** Memory and CPU of the server and the workers (`/api/status`, `/metrics`). */
  processStats: ProcessStats;
} {
  const { loaded, root, ref } = server;
  const events = new EventLog();
  const processStats = new ProcessStats();
  const metrics = new ServerMetrics({
    source: () => ref.server!.status(),
    processStats,
    ...(loaded.config.server.static.enabled
      ? { staticCounters: () => ref.server?.staticStats() }
      : {}),
  });
  const observe = observeRecords(events, metrics);
  const recordListeners = new Set<(record: LogRecord) => void>();
  const onRecord = (record: LogRecord) => {
    observe(record);
    for (const listener of recordListeners) listener(record);
  };
  const { now } = options;
  const serverLog = options.logger ? undefined : createServerLog({
    quiet: options.quiet ?? false,
    logFile: loaded.config.server.log_file
      ? resolve(root, loaded.config.server.log_file)
      : "",
    // Per worker, so `workers.paths` can give one worker its own file.
    workerLogFile: (name) => {
      const file = ref.server?.supervisor.workers.get(name)?.spec.settings
        .log_file;
      return file ? resolve(root, file) : "";
    },
    onRecord,
    ...(now ? { now } : {}),
  });
  const log = serverLog?.logger ?? observeLogger(options.logger!, onRecord);
  return { events, metrics, serverLog, log, recordListeners, processStats };
}
