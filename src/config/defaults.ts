import type { Config, Mode, ModeSettings, WorkerSettings } from "./types.ts";
import {
  DEFAULT_COMPRESSIBLE_TYPES,
  DEFAULT_MIN_BYTES,
} from "../compress/mod.ts";

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
    read_timeout_seconds: 30,
    write_timeout_seconds: 30,
    idle_timeout_seconds: 120,
    env: {},
    health_path: "/health",
    startup_timeout_ms: 10000,
    drain_timeout_ms: 30000,
    instances: 1,
    go_max_procs: 0,
    go_mem_limit: "",
    log_file: "",
    retry_window_ms: 3000,
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
      timeout_ms: 120_000,
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
      // Empty: the server binds 127.0.0.1 in dev and 0.0.0.0 in prod.
      host: "",
      read_timeout_seconds: 30,
      write_timeout_seconds: 30,
      idle_timeout_seconds: 120,
      request_buffer_bytes: 1024 * 1024,
      max_body_bytes: 0,
      body_temp_dir: "",
      max_ws_message_bytes: 64 * 1024 * 1024,
      // Loopback: a front on this machine (nginx, Caddy) may set X-Forwarded-*.
      trusted_proxies: ["127.0.0.0/8", "::1/128"],
      deployment_mode: undefined,
      log_file: "",
      pid_file: "logs/tqserver.pid",
      access_log: "",
      access_log_format: "combined",
      static: {
        enabled: true,
        url_prefix: "/static",
        cache_max_age_seconds: 3600,
        dev_root: "workers",
        cache_max_bytes: 64 * 1024 * 1024,
        cache_file_max_bytes: 256 * 1024,
        revalidate_ms: 1000,
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
      shutdown_grace_period_ms: 5000,
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
