import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  type Config,
  ConfigError,
  discoverWorkers,
  loadConfig,
  type Mode,
  resolveMode,
  type WorkerSpec,
} from "../config/mod.ts";
import {
  type AdminHandler,
  EventLog,
  observeRecords,
  type ServerStatusJson,
} from "../admin/mod.ts";
import {
  Builder,
  type BuildResult,
  type BuildTarget,
  describeBuildError,
  GoBuilder,
} from "../build/mod.ts";
import {
  type AccessLog,
  createServerLog,
  type Logger,
  observeLogger,
  type ServerLog,
} from "../log/mod.ts";
import { ServerMetrics } from "../metrics/mod.ts";
import type { ProxyHandler } from "../proxy/mod.ts";
import type { StaticCacheStats } from "../static/mod.ts";
import {
  checkForChanges,
  Coalescer,
  type ReloadReport,
  type ReloadState,
} from "../reload/mod.ts";
import { RouteTable } from "../routes/mod.ts";
import { Supervisor } from "../supervisor/mod.ts";
import { VERSION } from "../version.ts";
import type { DevHooks } from "../dev_contract.ts";
import {
  assertPortFree,
  type Listeners,
  openListeners,
  portKey,
} from "./listeners.ts";
import { PidFile } from "./pid_file.ts";
import { OpenStreams } from "./streams.ts";
import {
  HANDOVER_MS,
  notifyPredecessor,
  startSuccessor,
  successorTimeoutMs,
} from "./upgrade.ts";
import { sdNotify } from "./sd_notify.ts";
import { RESTART_EXIT_CODE, RUNNER_ENV } from "../dev_contract.ts";

/** Options for {@linkcode TqServer.start}. */
export interface ServerOptions {
  /** Project root (absolute or cwd-relative). */
  root: string;
  /** `--config FILE`. Default `config/server.yaml` under the root. */
  configFile?: string | undefined;
  /** `--mode`. Default: resolved from env and config. */
  mode?: string | undefined;
  /** `--port`, overriding `server.port`. */
  port?: number | undefined;
  /** Log warnings and errors only. Default false. */
  quiet?: boolean;
  /** Logger; default: stdout plus `server.log_file` (and worker `log_file`s). */
  logger?: Logger;
  /** The clock of log file names and access log lines. Default `() => new Date()`. */
  now?: () => Date;
  /** Folder of the admin dashboard. Default `{root}/server/public/admin`. */
  dashboardDir?: string;
  /** Extra hooks for dev mode (live reload), attached by the dev subsystem. */
  devHooks?: (server: TqServer) => DevHooks | undefined;
  /** True when this process was started by an upgrading predecessor. */
  successor?: boolean;
  /** Aborts the start (SIGTERM or SIGINT during startup): builds and starts are cancelled, {@linkcode StartCancelled} thrown. */
  signal?: AbortSignal;
}

/** Thrown by {@linkcode TqServer.start} when its signal aborted: nothing it spawned is left running. */
export class StartCancelled extends Error {
  constructor(reason: string) {
    super(`Start cancelled by ${reason}`);
    this.name = "StartCancelled";
  }
}

/** The running server: public listener, admin listener, supervisor. */
export class TqServer {
  readonly root: string;
  readonly mode: Mode;
  readonly startedAt = new Date();
  readonly table = new RouteTable();
  readonly log: Logger;
  /** The timeline of `/api/events` and the dashboard. */
  readonly events: EventLog;
  /** The counters of `/metrics`. */
  readonly metrics: ServerMetrics;
  readonly supervisor: Supervisor;
  readonly builder: Builder;
  /** Builds the Go workers (`src/main.go`). */
  readonly goBuilder: GoBuilder;
  config: Config;
  port = 0;
  adminPort = 0;
  /** The process exit code once the server has stopped (75: restart me, under the dev runner). */
  exitCode = 0;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  #options: ServerOptions;
  #closing = false;
  #upgrading = false;
  #proxy: ProxyHandler | undefined;
  #listeners: Listeners | undefined;
  #stopping = false;
  #public: Deno.HttpServer<Deno.NetAddr> | undefined;
  #admin: Deno.HttpServer<Deno.NetAddr> | undefined;
  #reload: Coalescer<ReloadReport>;
  #reloadState: ReloadState;
  #finish!: () => void;
  #dev: DevHooks | undefined;
  #streams = new OpenStreams();
  #pidFile: PidFile | undefined;
  #successor: Deno.ChildProcess | undefined;
  #lastDiscoverWarnings = new Set<string>();
  #serverLog: ServerLog | undefined;
  #access: AccessLog | undefined;
  #adminHandler: AdminHandler | undefined;

  private constructor(
    options: ServerOptions,
    config: Config,
    mode: Mode,
    log: Logger,
    observed: {
      events: EventLog;
      metrics: ServerMetrics;
      serverLog?: ServerLog;
    },
  ) {
    this.root = resolve(options.root);
    this.#options = options;
    this.config = withBindHost(config, mode);
    this.mode = mode;
    this.log = log;
    this.events = observed.events;
    this.metrics = observed.metrics;
    this.#serverLog = observed.serverLog;
    const build = config.deployment[mode].build;
    this.builder = new Builder({
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
      ...(existsSync(join(this.root, "deno.json"))
        ? { configPath: join(this.root, "deno.json") }
        : {}),
    });
    this.goBuilder = new GoBuilder({
      ldflags: build.ldflags,
      parallel: build.parallel_builds,
      timeoutMs: build.timeout_ms,
      timeoutKey: `deployment.${mode}.build.timeout_ms`,
      logger: log,
    });
    this.supervisor = new Supervisor(config, {
      mode,
      table: this.table,
      logger: log,
      // Dev may hand a warm standby process over instead of spawning one.
      spawn: (command, opts) =>
        this.#dev?.spawn
          ? this.#dev.spawn(command, opts)
          : new Deno.Command(command, opts).spawn(),
    });
    this.#reloadState = { configMtimes: new Map(), serverMtime: 0 };
    this.#reload = new Coalescer(async () => {
      const report = await checkForChanges(this, this.#reloadState);
      if (report.config === "applied") {
        this.#listeners?.reconfigure(this.config);
      }
      return report;
    });
    this.finished = new Promise((resolve) => this.#finish = resolve);
  }

  /**
   * Loads the config, starts the workers and both listeners.
   *
   * @throws {ConfigError} When a config file is invalid (exit code 2).
   */
  static async start(options: ServerOptions): Promise<TqServer> {
    const root = resolve(options.root);
    const loaded = await loadConfig({
      root,
      ...(options.configFile ? { configFile: options.configFile } : {}),
    });
    const mode = resolveMode({
      flag: options.mode,
      env: Deno.env.get("DEPLOYMENT_MODE"),
      config: loaded.config,
    });
    const events = new EventLog();
    // The logger and the metrics exist before the server they report on.
    const ref: { server?: TqServer } = {};
    const metrics = new ServerMetrics({
      source: () => ref.server!.status(),
      ...(loaded.config.server.static.enabled
        ? { staticCounters: () => ref.server?.staticStats() }
        : {}),
    });
    const onRecord = observeRecords(events, metrics);
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
    for (const warning of loaded.warnings) {
      log.warn("config warning", { problem: warning });
    }
    const server = new TqServer(options, loaded.config, mode, log, {
      events,
      metrics,
      ...(serverLog ? { serverLog } : {}),
    });
    ref.server = server;
    const { signal } = options;
    // Cancels health waits and builds under way; the start then unwinds below.
    const cancel = () => server.supervisor.shutdown();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      await server.#start();
    } catch (err) {
      // Nothing may be left running when the start fails (a port in use, say).
      const reason = signal?.aborted ? String(signal.reason) : "start failed";
      await server.shutdown(reason);
      if (signal?.aborted) throw new StartCancelled(reason);
      throw err;
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
    return server;
  }

  /** The config files' paths that tqserver reads (existing or not). */
  configPaths(): string[] {
    const server = this.#options.configFile
      ? resolve(this.root, this.#options.configFile)
      : join(this.root, "config", "server.yaml");
    return [server, join(server, "..", "deployment.yaml")];
  }

  /** Re-reads the config files. @throws {ConfigError} */
  async loadConfig() {
    const loaded = await loadConfig({
      root: this.root,
      ...(this.#options.configFile
        ? { configFile: this.#options.configFile }
        : {}),
    });
    withBindHost(loaded.config, this.mode);
    return loaded;
  }

  /** Discovers the workers under the current config, logging warnings the last discovery did not. */
  async discover(config: Config = this.config): Promise<WorkerSpec[]> {
    const seen = new Set<string>();
    const specs = await discoverWorkers(this.root, config, {
      warn: (problem) => {
        seen.add(problem);
        if (!this.#lastDiscoverWarnings.has(problem)) {
          this.log.warn(
            problem.startsWith("Skipped") ? "worker skipped" : "worker warning",
            { problem },
          );
        }
      },
    });
    this.#lastDiscoverWarnings = seen;
    return specs;
  }

  /** Builds the TypeScript and Go workers among `specs` whose binaries are stale; `signal` cancels the TypeScript builds. */
  async build(
    specs: WorkerSpec[],
    signal?: AbortSignal,
  ): Promise<BuildResult[]> {
    const targets = (kind: WorkerSpec["kind"]): BuildTarget[] =>
      specs.filter((s) => s.kind === kind && s.entry).map((s) => ({
        name: s.name,
        entry: s.entry!,
        binPath: s.binPath,
        dir: s.dir,
      }));
    const ts = targets("typescript");
    const go = targets("go");
    // One count for both builders: `[3/5] hello_go 900 ms`.
    const progress = { done: 0, total: ts.length + go.length };
    const [a, b] = await Promise.all([
      ts.length
        ? this.builder.buildAll(ts, { progress, ...(signal ? { signal } : {}) })
        : [],
      go.length ? this.goBuilder.buildAll(go, { progress }) : [],
    ]);
    return [...a, ...b];
  }

  /** Runs the SIGHUP check; concurrent calls coalesce. */
  reload(): Promise<ReloadReport> {
    if (!this.config.deployment[this.mode].timestamp_check.enabled) {
      this.log.warn("reload ignored", {
        why: `deployment.${this.mode}.timestamp_check.enabled is false`,
      });
      return Promise.resolve({
        ms: 0,
        workers: 0,
        config: "unchanged",
        actions: [],
      });
    }
    return this.#reload.request();
  }

  /** Drops the static cache entries of `worker` (all when omitted) at once: its `public/` changed. */
  invalidateStatic(worker?: string): void {
    const dropped = this.#listeners?.static?.invalidate(worker) ?? 0;
    if (dropped > 0) {
      this.log.debug("static cache invalidated", { worker, entries: dropped });
    }
  }

  /** Static cache and traffic counters (hits, misses, bytes…); undefined when static files are off. */
  staticStats(): StaticCacheStats | undefined {
    return this.#listeners?.static?.stats();
  }

  /** Status for `/api/status`. */
  status(): ServerStatusJson {
    return {
      mode: this.mode,
      pid: Deno.pid,
      version: VERSION,
      started_at: this.startedAt.toISOString(),
      port: this.port,
      workers: this.supervisor.status(),
    };
  }

  async #start(): Promise<void> {
    const { config, mode } = this;
    this.log.info("tqserver starting", {
      version: VERSION,
      mode,
      root: this.root,
      pid: Deno.pid,
    });
    const { signal, successor } = this.#options;
    const cancelled = () => {
      if (signal?.aborted) throw new StartCancelled(String(signal.reason));
    };
    const pidFile = config.server.pid_file
      ? new PidFile(this.root, config.server.pid_file, this.log)
      : undefined;
    // A successor takes the file over only once it serves (its start may fail).
    if (pidFile && !successor) {
      await pidFile.write();
      this.#pidFile = pidFile;
    }
    const specs = await this.discover();
    cancelled();
    this.#dev = this.#options.devHooks?.(this);
    if (!successor) {
      // Fail fast: both ports are ours before any build or worker starts.
      await assertPortFree(
        config.server.host,
        this.#options.port ?? config.server.port,
        portKey(this.#options),
      );
      const admin = config.server.admin;
      if (admin.enabled) {
        await assertPortFree(admin.host, admin.port, "server.admin.port");
      }
      this.#listen();
    }
    cancelled();
    const built = mode === "dev" ? await this.build(specs, signal) : [];
    cancelled();
    this.#dev?.onBuild?.(built);
    await this.supervisor.start(specs);
    cancelled();
    for (const result of built) {
      if (result.status === "failed") {
        this.supervisor.noteError(
          result.name,
          describeBuildError(result.error),
        );
      }
    }
    await checkForChanges(this, this.#reloadState, { record: true });
    cancelled();
    // A successor binds only now: its listener must not take connections before its workers serve.
    if (successor) this.#listen();
    this.log.info("tqserver ready", {
      port: this.port,
      admin: this.adminPort
        ? `${config.server.admin.host}:${this.adminPort}`
        : "off",
      workers: specs.length,
    });
    if (this.#options.successor) {
      // systemd must know the new main process before the old one exits.
      await sdNotify(`MAINPID=${Deno.pid}\nREADY=1`, this.log);
      notifyPredecessor(this.log);
      if (pidFile) {
        await pidFile.write();
        this.#pidFile = pidFile;
      }
    } else {
      await sdNotify("READY=1", this.log);
    }
    const interval = config.deployment[mode].timestamp_check.interval_seconds;
    if (interval > 0) {
      const timer = setInterval(() => {
        this.reload().catch((err) =>
          this.log.error("periodic check failed", { error: err })
        );
      }, interval * 1000);
      this.finished.then(() => clearInterval(timer));
    }
  }

  #listen(): void {
    const listeners = openListeners({
      root: this.root,
      config: this.config,
      port: this.#options.port,
      table: this.table,
      logger: this.log,
      dev: this.#dev,
      closing: () => this.#closing,
      streams: this.#streams,
      status: () => this.status(),
      reload: () => this.reload(),
      dashboardDir: this.#options.dashboardDir,
      restart: (name) => this.supervisor.replace(name, "manual"),
      events: this.events,
      metrics: this.metrics,
      ...(this.#options.now ? { now: this.#options.now } : {}),
    });
    this.#access = listeners.access;
    this.#adminHandler = listeners.adminHandler;
    this.#proxy = listeners.proxy;
    this.#listeners = listeners;
    this.#public = listeners.public;
    this.#admin = listeners.admin;
    this.port = this.#public.addr.port;
    if (this.#admin) this.adminPort = this.#admin.addr.port;
  }

  /**
   * Self-upgrade: starts a successor on the same port and, once it serves,
   * answers with `Connection: close`, drains and stops this server.
   *
   * @returns true when the successor took over.
   */
  async upgrade(): Promise<boolean> {
    if (this.#closing || this.#upgrading) return false;
    if (Deno.env.get(RUNNER_ENV)) {
      // Under `deno task dev` the runner starts the new server: stop, and ask it to.
      this.exitCode = RESTART_EXIT_CODE;
      this.shutdown("server-source-changed");
      return true;
    }
    this.#upgrading = true;
    try {
      // From a terminal, this process stays its job so Ctrl+C reaches the new server.
      const foreground = isTerminal();
      const child = await startSuccessor({
        logger: this.log,
        timeoutMs: successorTimeoutMs(this.config),
        graceMs: this.config.workers.shutdown_grace_period_ms,
        foreground,
      });
      const ok = child !== undefined;
      if (ok) {
        if (foreground) this.#successor = child;
        this.#closing = true;
        // Keep-alive clients get `Connection: close` on their next request and
        // reconnect, landing on the successor's listener too, before this one closes.
        setTimeout(() => this.shutdown("server-upgrade"), HANDOVER_MS);
      }
      return ok;
    } finally {
      this.#upgrading = false;
    }
  }

  /**
   * Stops accepting, ends streams that never end by themselves (event
   * streams, WebSockets: clients reconnect), lets in-flight requests finish
   * (up to `drain_timeout_ms`), stops every worker (visible as `stopping` on
   * the admin port meanwhile) and resolves when nothing is left running.
   */
  async shutdown(reason = "signal"): Promise<void> {
    if (this.#stopping) return await this.finished;
    this.#stopping = true;
    this.#closing = true;
    this.log.info("tqserver stopping", { reason });
    if (reason !== "server-upgrade") await sdNotify("STOPPING=1", this.log);
    this.#streams.closeAll();
    this.#proxy?.closeWebSockets();
    const drainMs = this.config.workers.default.drain_timeout_ms;
    // Open dashboard streams would hold the admin listener's shutdown.
    this.#adminHandler?.close();
    const drained = await within(this.#public?.shutdown(), drainMs);
    if (!drained) {
      this.log.warn("drain timed out", {
        port: this.port,
        timeout_ms: drainMs,
        key: "workers.default.drain_timeout_ms",
      });
    }
    await this.supervisor.shutdown();
    await within(this.#admin?.shutdown(), ADMIN_CLOSE_MS);
    await this.#dev?.close?.();
    await this.builder.close();
    this.#proxy?.close();
    this.#pidFile?.remove();
    this.log.info("tqserver stopped", { reason });
    this.#access?.close();
    this.#serverLog?.close();
    this.#finish();
  }

  /** Reopens the log files and the access log (SIGUSR1, after logrotate moved them). */
  reopenLogs(): void {
    this.#serverLog?.reopen();
    this.#access?.reopen();
    this.log.info("log files reopened");
  }

  /** True once the server is handing over or stopping. */
  get closing(): boolean {
    return this.#closing;
  }

  /** The successor this server handed over to while staying the terminal's foreground job. */
  get foregroundSuccessor(): Deno.ChildProcess | undefined {
    return this.#successor;
  }
}

/** Longest wait for the admin listener's last answers once the workers stopped. */
const ADMIN_CLOSE_MS = 1000;

/** Awaits `promise` for at most `ms`; true when it settled in time. */
async function within(
  promise: Promise<unknown> | undefined,
  ms: number,
): Promise<boolean> {
  if (!promise) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    promise.then(() => true, () => true),
    new Promise<false>((resolve) =>
      timer = setTimeout(() => resolve(false), ms)
    ),
  ]);
  clearTimeout(timer);
  return settled;
}

function isTerminal(): boolean {
  try {
    return Deno.stdin.isTerminal();
  } catch {
    return false;
  }
}

export { ConfigError };

/**
 * Fills in `server.host` when no config file set it: 127.0.0.1 in dev (like
 * Vite, so a dev server is not open to the network), 0.0.0.0 in prod (SPEC §9).
 */
function withBindHost(config: Config, mode: Mode): Config {
  if (!config.server.host) {
    config.server.host = mode === "dev" ? "127.0.0.1" : "0.0.0.0";
  }
  return config;
}
