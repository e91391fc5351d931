import { join, resolve } from "node:path";
import {
  type Config,
  ConfigError,
  discoverWorkers,
  loadConfig,
  type Mode,
  resolveMode,
  withModeDefaults,
  type WorkerSpec,
} from "../config/mod.ts";
import {
  type AdminHandler,
  type EventLog,
  type ServerStatusJson,
  withUsage,
  type WorkerOutputJson,
} from "../admin/mod.ts";
import {
  type Builder,
  type BuildResult,
  type BuildTarget,
  describeBuildError,
  type GoBuilder,
} from "../build/mod.ts";
import type { AccessLog, Logger, LogRecord, ServerLog } from "../log/mod.ts";
import type { ProcessStats, ServerMetrics } from "../metrics/mod.ts";
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
  keepsForeground,
  notifyPredecessor,
  startSuccessor,
  successorTimeoutMs,
} from "./upgrade.ts";
import { sdNotify } from "./sd_notify.ts";
import { type ServerOptions, StartCancelled } from "./options.ts";
import { createBuilders, createObservers, warnUnhonoured } from "./wiring.ts";
import { ADMIN_CLOSE_MS, within } from "./_util.ts";
import {
  type DevHooks,
  RESTART_EXIT_CODE,
  RUNNER_ENV,
} from "../dev_contract.ts";

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
  /** Memory and CPU of the server and its workers, from `/proc`. */
  readonly processStats: ProcessStats;
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
  #upgradeAbort: AbortController | undefined;
  #lastDiscoverWarnings = new Set<string>();
  #serverLog: ServerLog | undefined;
  #access: AccessLog | undefined;
  #adminHandler: AdminHandler | undefined;
  #recordListeners: Set<(record: LogRecord) => void>;

  private constructor(
    options: ServerOptions,
    config: Config,
    mode: Mode,
    log: Logger,
    observed: {
      events: EventLog;
      metrics: ServerMetrics;
      recordListeners: Set<(record: LogRecord) => void>;
      processStats: ProcessStats;
      serverLog?: ServerLog;
    },
  ) {
    this.#recordListeners = observed.recordListeners;
    this.processStats = observed.processStats;
    this.root = resolve(options.root);
    this.#options = options;
    this.config = withModeDefaults(config, mode);
    this.mode = mode;
    this.log = log;
    this.events = observed.events;
    this.metrics = observed.metrics;
    this.#serverLog = observed.serverLog;
    warnUnhonoured(config, mode, log);
    const builders = createBuilders(this.root, config, mode, log);
    this.builder = builders.builder;
    this.goBuilder = builders.goBuilder;
    this.supervisor = new Supervisor(config, {
      mode,
      table: this.table,
      logger: log,
      // Dev may hand a warm standby process over instead of spawning one.
      spawn: (command, opts) =>
        this.#dev?.spawn
          ? this.#dev.spawn(command, opts)
          : new Deno.Command(command, opts).spawn(),
      // A replaced instance's WebSockets get 1012, and only its own.
      retireConnections: ({ origin, drainMs }) =>
        this.#proxy?.retireWebSockets(origin, drainMs) ?? Promise.resolve(),
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
    // The logger and the metrics exist before the server they report on.
    const ref: { server?: TqServer } = {};
    const { events, metrics, serverLog, log, recordListeners, processStats } =
      createObservers(
        options,
        loaded,
        root,
        ref,
      );
    for (const warning of loaded.warnings) {
      log.warn("config warning", { problem: warning });
    }
    const server = new TqServer(options, loaded.config, mode, log, {
      events,
      metrics,
      recordListeners,
      processStats,
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

  /** Calls `listener` with every record the server logs from now on (dev: failures shown on the page). */
  onLogRecord(listener: (record: LogRecord) => void): void {
    this.#recordListeners.add(listener);
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
    withModeDefaults(loaded.config, this.mode);
    return loaded;
  }

  /** Discovers the workers under the current config, logging warnings the last discovery did not. */
  async discover(config: Config = this.config): Promise<WorkerSpec[]> {
    const seen = new Set<string>();
    const warn = (problem: string) => {
      seen.add(problem);
      if (!this.#lastDiscoverWarnings.has(problem)) {
        this.log.warn(
          problem.startsWith("Skipped") ? "worker skipped" : "worker warning",
          { problem },
        );
      }
    };
    const specs = await discoverWorkers(this.root, config, { warn });
    // The limit is DENO_V8_FLAGS, which only a Deno program reads.
    const key = `deployment.${this.mode}.resources.worker_max_memory_mb`;
    if (config.deployment[this.mode].resources.worker_max_memory_mb > 0) {
      for (const spec of specs) {
        if (spec.kind === "go") {
          warn(
            `"${key}" has no effect for worker "${spec.name}": it is a Go worker (set workers.default.go_mem_limit)`,
          );
        } else if (spec.kind === "binary") {
          warn(
            `"${key}" reaches worker "${spec.name}" as DENO_V8_FLAGS, which only a Deno program reads: a prebuilt worker in another language is not limited`,
          );
        }
      }
    }
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

  /** The last lines each instance of `worker` printed; undefined for an unknown worker. */
  workerOutput(worker: string): WorkerOutputJson | undefined {
    const entry = this.supervisor.workers.get(worker);
    if (!entry) return undefined;
    return {
      worker,
      instances: [...entry.active, ...entry.draining].map((i) => ({
        pid: i.pid,
        port: i.port,
        lines: i.recentOutput(),
      })),
    };
  }

  /** Status for `/api/status`. */
  status(): ServerStatusJson {
    const self = this.processStats.self();
    return {
      mode: this.mode,
      pid: Deno.pid,
      version: VERSION,
      started_at: this.startedAt.toISOString(),
      port: this.port,
      rss_bytes: self?.rssBytes ?? null,
      cpu_seconds: self?.cpuSeconds ?? null,
      responses: this.metrics.responses(),
      workers: this.supervisor.status().map((w) =>
        withUsage(w, this.processStats, this.metrics.responses(w.name))
      ),
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
    // A second server on the same PID file would take it over from the first.
    if (!successor) pidFile?.assertNotRunning();
    // The dev hooks first: they show on the page what discovery finds wrong.
    this.#dev = this.#options.devHooks?.(this);
    const specs = await this.discover();
    cancelled();
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
      // Only once both ports are ours: a second server started by mistake on
      // this root fails above and leaves the running one's PID file alone.
      // A successor takes the file over only once it serves (its start may fail).
      if (pidFile) {
        await pidFile.write();
        this.#pidFile = pidFile;
      }
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
      url: `http://${urlHost(config.server.host)}:${this.port}/`,
      dashboard: this.adminPort
        ? `http://${urlHost(config.server.admin.host)}:${this.adminPort}/`
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
      output: (name) => this.workerOutput(name),
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
    this.#upgradeAbort = new AbortController();
    try {
      // From a terminal, this process stays its job so Ctrl+C reaches the new server.
      const foreground = keepsForeground();
      const child = await startSuccessor({
        logger: this.log,
        timeoutMs: successorTimeoutMs(this.config),
        graceMs: this.config.workers.shutdown_grace_period_ms,
        foreground,
        signal: this.#upgradeAbort.signal,
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
      this.#upgradeAbort = undefined;
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
    // A successor still starting would outlive this stop: it goes too.
    this.#upgradeAbort?.abort();
    try {
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
      this.log.info("tqserver stopped", { reason });
    } catch (err) {
      // `finished` must still resolve, or the process waits for ever: it
      // exits 1, and any worker left exits on its stdin's EOF (SPEC §11).
      this.exitCode = 1;
      this.log.error("shutdown failed", { reason, error: err });
    } finally {
      this.#pidFile?.remove();
      this.#access?.close();
      this.#serverLog?.close();
      this.#finish();
    }
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

/** A host as a browser reaches it: a wildcard address is this machine (127.0.0.1), IPv6 in brackets. */
function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

export { ConfigError, type ServerOptions, StartCancelled };
