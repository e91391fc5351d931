/** Deployment mode of the server. */
export type Mode = "dev" | "prod";

/** Output format of a TypeScript worker build. */
export type BuildFormat = "bundle" | "compile";

/** Per-worker settings: `workers.default`, overridden by matching `workers.paths."{prefix}"`. */
export interface WorkerSettings {
  /** Requests after which an instance is replaced; 0 = no limit. Default 0. */
  max_requests: number;
  /** Seconds a client may be silent mid-body before a 408. Default `server.read_timeout_seconds`. */
  read_timeout_seconds: number;
  /** Seconds to wait for the worker's response headers before 504. Default `server.write_timeout_seconds`. */
  write_timeout_seconds: number;
  /** Seconds an idle upstream connection is kept. Default 120. */
  idle_timeout_seconds: number;
  /** Extra environment for the worker process. Default `{}`. */
  env: Record<string, string>;
  /** Health probe path. Default `/health`. */
  health_path: string;
  /** Time a new instance has to become healthy. Default 10000. */
  startup_timeout_ms: number;
  /** Longest wait for in-flight requests of a retiring instance. Default 30000. */
  drain_timeout_ms: number;
  /** Instances per worker. Default 1. */
  instances: number;
  /** `GOMAXPROCS` of a Go worker; 0 = unset (Go's default). Default 0. */
  go_max_procs: number;
  /** `GOMEMLIMIT` of a Go worker, e.g. `512MiB`; empty = unset. Default "". */
  go_mem_limit: string;
  /** File for the worker's output (root-relative, `{name}` and `{date}` expanded); empty = the server log. Default empty. */
  log_file: string;
  /**
   * Milliseconds a request whose instance died (and that can be resent) waits
   * for a healthy one, like Caddy's `lb_try_duration`. Default 3000.
   */
  retry_window_ms: number;
  /**
   * Milliseconds a replaced instance's WebSockets stay open before they get
   * 1012 "service restart" (spread over the second half of this window).
   * Default 1000.
   */
  websocket_drain_ms: number;
}

/** `deployment.{dev,prod}.file_watcher`. */
export interface FileWatcherSettings {
  /** Watch files at all. Default true in dev, false in prod. */
  enabled: boolean;
  /** Quiet time after the last event before acting. Default 50. */
  debounce_ms: number;
  /**
   * Root-relative globs that are watched (braces and classes allowed, as in
   * `node:path` `matchesGlob`). Default: the SPEC's list. The old name `paths`
   * still works, with a deprecation warning.
   */
  watch_patterns: string[];
  /** Root-relative globs that are never acted on. */
  ignore: string[];
}

/** `deployment.{dev,prod}.build`. */
export interface BuildSettings {
  /** `bundle` (needs deno at run time) or `compile` (standalone). Default bundle in dev, compile in prod. */
  format: BuildFormat;
  /** Builds run at once. Default 2. */
  parallel_builds: number;
  /** Type-check before building. Default false. */
  check: boolean;
  /** Minify bundles. Default false. */
  minify: boolean;
  /** Deno permission flags baked into the worker's shebang / compile. Default `["--allow-all"]`. */
  permissions: string[];
  /** Extra `deno compile --target` for prod builds; empty = host. */
  target: string;
  /**
   * Where builds go, checked against `binaries.path`: relative to the worker
   * folder (`bin`) or to the root (`workers`, a folder that holds the binary). Default `bin`.
   */
  output_dir: string;
  /** `go build -ldflags` of Go workers. Default "" in dev, `-s -w` in prod. */
  ldflags: string;
  /** Longest a build (and each deno command of it) may run before it is killed. Default 120000. */
  timeout_ms: number;
}

/** `deployment.{dev,prod}.resources`. */
export interface ResourceSettings {
  /** V8 heap limit per TypeScript worker in MiB; 0 = Deno's default. */
  worker_max_memory_mb: number;
  /** The workers folder, like `workers.workers_dir` (they must agree). Default `workers`. */
  base_path: string;
  /** Dev: watch each worker's `public/` and `private/`. Default true in dev, false in prod (no watcher). */
  watch_resource_changes: boolean;
}

/** `deployment.{dev,prod}.timestamp_check`. */
export interface TimestampCheckSettings {
  /** Check mtimes on SIGHUP. Default true. */
  enabled: boolean;
  /** Also check every N seconds; 0 = only on signal. Default 0. */
  interval_seconds: number;
  /** What starts a check: `sighup` (SIGHUP or `POST /api/reload`), the only trigger. Default `sighup`. */
  trigger: "sighup";
}

/** `workers.discovery`: which folders of the workers folder are workers. */
export interface DiscoverySettings {
  /** `filesystem`, the only mode. */
  mode: "filesystem";
  /** The workers folder, like `workers.workers_dir` (they must agree). Default `workers`. */
  workers_dir: string;
  /**
   * Globs relative to the workers folder; a folder is a worker when a file in
   * it matches one (`{name}` is the folder name). Default `*\/src/main.ts`,
   * `*\/src/main.go` and the executable `*\/bin/{name}`.
   */
  include_patterns: string[];
}

/** Top-level `binaries`: where each worker's executable is. */
export interface BinarySettings {
  /** File name of the executable; `{worker_name}` is the folder name. Default `{worker_name}`. */
  format: string;
  /** Root-relative path of the executable. Default `workers/{worker_name}/bin/{worker_name}` (follows the workers folder). */
  path: string;
}

/** Settings of one deployment mode. */
export interface ModeSettings {
  file_watcher: FileWatcherSettings;
  build: BuildSettings;
  resources: ResourceSettings;
  timestamp_check: TimestampCheckSettings;
}

/** `deployment.targets.{name}` used by scripts/deploy.sh. */
export interface DeployTarget {
  /** `user@host` entries; none = `path` is a local directory. */
  hosts: string[];
  /** Project root on the target. */
  path: string;
  /** Extra ssh options. */
  ssh_options: string;
  /**
   * Admin base URL of each host's server, `{host}` standing for the host's
   * address, e.g. `http://{host}:8081`; called from the host over ssh when it
   * is not reachable from here (always for a loopback address). Empty = no
   * health checks, reload by PID file or `killall -HUP tqserver`.
   */
  admin_url: string;
  /** Hosts deployed at a time. Default 1. */
  batch: number;
  /** How long `--canary` watches the first host, in seconds. Default 60. */
  canary_seconds: number;
  /** Deploys kept aside on each host for `--rollback`. Default 5. */
  keep_releases: number;
}

/** The whole, validated configuration with every default filled in. */
export interface Config {
  server: {
    port: number;
    /** Bind address; empty until the server fills in its mode's default (127.0.0.1 dev, 0.0.0.0 prod). */
    host: string;
    read_timeout_seconds: number;
    write_timeout_seconds: number;
    idle_timeout_seconds: number;
    /** A chunked request body up to this size is buffered and sent with a Content-Length. Default 1048576. */
    request_buffer_bytes: number;
    /** A request body over this size gets 413; 0 = no limit. Default 0. */
    max_body_bytes: number;
    /** Folder of spooled chunked request bodies (root-relative or absolute); empty = the OS temp dir. Default empty. */
    body_temp_dir: string;
    /** A WebSocket message over this size closes both legs with 1009. Default 67108864 (Deno's limit). */
    max_ws_message_bytes: number;
    /** Peers (addresses or CIDR ranges) whose `X-Forwarded-*` are appended to, not replaced. Default loopback. */
    trusted_proxies: string[];
    /** Expanded `server.deployment_mode`; undefined when it expands to nothing. */
    deployment_mode: Mode | undefined;
    /** Log file path (root-relative, `{date}` expanded daily); empty = stderr only. */
    log_file: string;
    /** PID file (root-relative or absolute), written at start, rewritten by a self-upgrade, removed on a clean stop; empty = none. Default `logs/tqserver.pid`. */
    pid_file: string;
    /** Access log path (root-relative, `{date}` expanded daily); empty = no access log. */
    access_log: string;
    /** `combined` (nginx/Apache) or `json` (one object per line). Default combined. */
    access_log_format: "combined" | "json";
    static: {
      enabled: boolean;
      url_prefix: string;
      cache_max_age_seconds: number;
      /** The workers folder whose `{name}/public/` is served, like `workers.workers_dir` (they must agree). */
      dev_root: string;
      /** Memory bound of the static cache (LRU); 0 = no cache. Default 64 MiB. */
      cache_max_bytes: number;
      /** Files up to this size are cached with their bytes. Default 256 KiB. */
      cache_file_max_bytes: number;
      /** A cached entry is revalidated with one stat at most this often; 0 = every request. Default 1000. */
      revalidate_ms: number;
    };
    /** br/gzip of static files and of workers' answers. */
    compression: {
      /** Default true. */
      enabled: boolean;
      /** Answers shorter than this are sent as they are. Default 1024. */
      min_bytes: number;
      /** Content-Type patterns (`text/*`, `application/json`). Default: text, JS, JSON, XML, SVG, wasm. */
      types: string[];
    };
    /** `token`: Bearer token for the admin API; required when `host` is not loopback. */
    admin: { enabled: boolean; host: string; port: number; token: string };
  };
  workers: {
    workers_dir: string;
    port_range_start: number;
    port_range_end: number;
    startup_delay_ms: number;
    restart_delay_ms: number;
    shutdown_grace_period_ms: number;
    discovery: DiscoverySettings;
    default: WorkerSettings;
    /** Prefix → partial settings, applied to workers routed at or under the prefix. */
    paths: Record<string, Partial<WorkerSettings>>;
    /** Worker name → route override. */
    routes: Record<string, string>;
  };
  deployment: {
    mode: Mode | undefined;
    dev: ModeSettings;
    prod: ModeSettings;
    targets: Record<string, DeployTarget>;
  };
  binaries: BinarySettings;
}

/** A configuration problem that names the file, line and key. */
export class ConfigError extends Error {
  /** File the problem is in, root-relative when possible. */
  readonly file: string;
  /** 1-based line, or 0 when unknown. */
  readonly line: number;
  /** Dotted key path, e.g. `server.port`. */
  readonly key: string;

  constructor(
    file: string,
    line: number,
    key: string,
    message: string,
    options?: ErrorOptions,
  ) {
    const where = line > 0 ? `${file}:${line}` : file;
    super(`${where}: ${key ? `"${key}": ` : ""}${message}`, options);
    this.name = "ConfigError";
    this.file = file;
    this.line = line;
    this.key = key;
  }
}
