import type { Config, Mode, ModeSettings, WorkerSettings } from "./types.ts";
import {
  DEFAULT_COMPRESSIBLE_TYPES,
  DEFAULT_MIN_BYTES,
} from "../compress/mod.ts";

// Defaults and bounds that internal modules fall back on when a caller passes
// no value: each is written here once, so changing it is one line.

/** `server.read_timeout_seconds` (and the workers' one it defaults) when not set. */
export const DEFAULT_READ_TIMEOUT_SECONDS = 30;
/** `server.write_timeout_seconds` (and the workers' one it defaults) when not set. */
export const DEFAULT_WRITE_TIMEOUT_SECONDS = 30;
/** `deployment.{dev,prod}.build.timeout_ms` when not set: the longest a build (each command of it) runs. */
export const DEFAULT_BUILD_TIMEOUT_MS = 120_000;
/** `workers.default.retry_window_ms` when not set. */
export const DEFAULT_RETRY_WINDOW_MS = 3_000;
/** `workers.default.drain_timeout_ms` when not set. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** `workers.shutdown_grace_period_ms` when not set: SIGTERM to SIGKILL. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;
/** `server.request_buffer_bytes` when not set. */
export const DEFAULT_REQUEST_BUFFER_BYTES = 1024 * 1024;
/** `server.max_ws_message_bytes` when not set. */
export const DEFAULT_MAX_WS_MESSAGE_BYTES = 64 * 1024 * 1024;
/** `server.trusted_proxies` when not set: loopback, a front on this machine (nginx, Caddy). */
export const DEFAULT_TRUSTED_PROXIES: readonly string[] = [
  "127.0.0.0/8",
  "::1/128",
];
/** `server.static.url_prefix` when not set. */
export const DEFAULT_STATIC_PREFIX = "/static";
/** `server.static.cache_max_age_seconds` when not set. */
export const DEFAULT_STATIC_MAX_AGE_SECONDS = 3600;
/** `server.static.cache_max_bytes` when not set. */
export const DEFAULT_STATIC_CACHE_MAX_BYTES = 64 * 1024 * 1024;
/** `server.static.cache_file_max_bytes` when not set. */
export const DEFAULT_STATIC_CACHE_FILE_MAX_BYTES = 256 * 1024;
/** `server.static.revalidate_ms` when not set. */
export const DEFAULT_STATIC_REVALIDATE_MS = 1000;
/** The proxy's client body read timeout when it is given none: `server.read_timeout_seconds` in ms. */
export const DEFAULT_READ_TIMEOUT_MS = DEFAULT_READ_TIMEOUT_SECONDS * 1000;
/** How long the proxy keeps an idle upstream connection when it is given no `idleTimeoutMs`. */
export const DEFAULT_UPSTREAM_IDLE_MS = 30_000;
/** The longest one health probe waits for an answer, whatever the interval or startup time left. */
export const PROBE_TIMEOUT_CAP_MS = 2_000;
/** The shortest wait for a self-upgrade successor to serve (it starts every worker first). */
export const SUCCESSOR_MIN_TIMEOUT_MS = 30_000;
/** Longest wait for a killed process group's last processes to go. */
export const GROUP_GONE_MS = 2_000;

/** `server.host` when no file sets it, by mode: loopback in dev (like Vite), every address in prod (SPEC §9). */
export const DEFAULT_HOST: Readonly<Record<Mode, string>> = {
  dev: "127.0.0.1",
  prod: "0.0.0.0",
};

/**
 * Fills in the defaults that depend on the mode and are left empty by
 * {@linkcode defaultConfig}: today `server.host` (SPEC §9). Mutates and
 * returns `config`; a value a file set is kept.
 *
 * @example
 * ```ts
 * withModeDefaults(defaultConfig(), "dev").server.host; // "127.0.0.1"
 * ```
 */
export function withModeDefaults(config: Config, mode: Mode): Config {
  if (!config.server.host) config.server.host = DEFAULT_HOST[mode];
  return config;
}

function folder(workersDir: string): string {
  return workersDir.replace(/\/+$/, "") || ".";
}

/**
 * Root-relative globs watched in dev when `file_watcher.watch_patterns` is
 * not set (SPEC §6), for the given workers folder.
 *
 * @example
 * ```ts
 * defaultWatchPaths("workers")[0]; // "workers/*\/src/**"
 * ```
 */
export function defaultWatchPaths(workersDir = "workers"): string[] {
  const dir = folder(workersDir);
  return [
    `${dir}/*/src/**`,
    `${dir}/*/go.{mod,sum}`,
    `${dir}/*/public/**`,
    `${dir}/*/private/**`,
    `${dir}/*/bin/*`,
    "config/*.yaml",
    "main.ts",
    "src/**",
  ];
}

/**
 * `binaries.path` when it is not set: `{workers_dir}/{worker_name}/bin/{format}`.
 *
 * @example
 * ```ts
 * defaultBinaryPath("workers"); // "workers/{worker_name}/bin/{worker_name}"
 * ```
 */
export function defaultBinaryPath(
  workersDir = "workers",
  format = "{worker_name}",
): string {
  return `${folder(workersDir)}/{worker_name}/bin/${format}`;
}

/** `workers.discovery.include_patterns` when it is not set, relative to the workers folder. */
export const DEFAULT_INCLUDE_PATTERNS: readonly string[] = [
  "*/src/main.ts",
  "*/src/main.go",
  "*/bin/{name}",
];

/**
 * Root-relative globs that never trigger anything when `file_watcher.ignore`
 * is not set. `tests/` is there because the test suite, run beside
 * `deno task dev`, must not make the dev server rebuild or wait.
 */
export const DEFAULT_WATCH_IGNORE: readonly string[] = [
  "**/.git/**",
  "**/node_modules/**",
  "logs/**",
  "tests/**",
];

/** `workers.default` with every default filled in. */
export function defaultWorkerSettings(): WorkerSettings {
  return {
    max_requests: 0,
    read_timeout_seconds: DEFAULT_READ_TIMEOUT_SECONDS,
    write_timeout_seconds: DEFAULT_WRITE_TIMEOUT_SECONDS,
    idle_timeout_seconds: 120,
    env: {},
    health_path: "/health",
    startup_timeout_ms: 10000,
    drain_timeout_ms: DEFAULT_DRAIN_TIMEOUT_MS,
    instances: 1,
    go_max_procs: 0,
    go_mem_limit: "",
    log_file: "",
    retry_window_ms: DEFAULT_RETRY_WINDOW_MS,
    websocket_drain_ms: 1000,
  };
}

function defaultModeSettings(mode: Mode): ModeSettings {
  return {
    file_watcher: {
      enabled: mode === "dev",
      debounce_ms: 50,
      watch_patterns: defaultWatchPaths(),
      ignore: [...DEFAULT_WATCH_IGNORE],
    },
    build: {
      format: mode === "dev" ? "bundle" : "compile",
      parallel_builds: 2,
      check: false,
      minify: false,
      permissions: ["--allow-all"],
      target: "",
      output_dir: "bin",
      ldflags: mode === "prod" ? "-s -w" : "",
      timeout_ms: DEFAULT_BUILD_TIMEOUT_MS,
    },
    resources: {
      worker_max_memory_mb: 0,
      base_path: "workers",
      watch_resource_changes: mode === "dev",
    },
    timestamp_check: { enabled: true, interval_seconds: 0, trigger: "sighup" },
  };
}

/**
 * The configuration tqserver runs on when no config file exists (SPEC §9).
 * Every call returns a fresh object.
 *
 * @example
 * ```ts
 * defaultConfig().server.port; // 8080
 * ```
 */
export function defaultConfig(): Config {
  return {
    server: {
      port: 8080,
      // Empty: resolved by mode ({@linkcode withModeDefaults}).
      host: "",
      read_timeout_seconds: DEFAULT_READ_TIMEOUT_SECONDS,
      write_timeout_seconds: DEFAULT_WRITE_TIMEOUT_SECONDS,
      idle_timeout_seconds: 120,
      request_buffer_bytes: DEFAULT_REQUEST_BUFFER_BYTES,
      max_body_bytes: 0,
      body_temp_dir: "",
      max_ws_message_bytes: DEFAULT_MAX_WS_MESSAGE_BYTES,
      trusted_proxies: [...DEFAULT_TRUSTED_PROXIES],
      deployment_mode: undefined,
      log_file: "",
      pid_file: "logs/tqserver.pid",
      access_log: "",
      access_log_format: "combined",
      static: {
        enabled: true,
        url_prefix: DEFAULT_STATIC_PREFIX,
        cache_max_age_seconds: DEFAULT_STATIC_MAX_AGE_SECONDS,
        dev_root: "workers",
        cache_max_bytes: DEFAULT_STATIC_CACHE_MAX_BYTES,
        cache_file_max_bytes: DEFAULT_STATIC_CACHE_FILE_MAX_BYTES,
        revalidate_ms: DEFAULT_STATIC_REVALIDATE_MS,
      },
      compression: {
        enabled: true,
        min_bytes: DEFAULT_MIN_BYTES,
        types: [...DEFAULT_COMPRESSIBLE_TYPES],
      },
      admin: { enabled: true, host: "127.0.0.1", port: 8081, token: "" },
    },
    workers: {
      workers_dir: "workers",
      port_range_start: 9000,
      port_range_end: 9999,
      startup_delay_ms: 100,
      restart_delay_ms: 100,
      shutdown_grace_period_ms: DEFAULT_SHUTDOWN_GRACE_MS,
      discovery: {
        mode: "filesystem",
        workers_dir: "workers",
        include_patterns: [...DEFAULT_INCLUDE_PATTERNS],
      },
      default: defaultWorkerSettings(),
      paths: {},
      routes: {},
    },
    deployment: {
      mode: undefined,
      dev: defaultModeSettings("dev"),
      prod: defaultModeSettings("prod"),
      targets: {},
    },
    binaries: { format: "{worker_name}", path: defaultBinaryPath() },
  };
}
