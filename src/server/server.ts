import { resolve } from "node:path";
import { ConfigError, ConfigStore } from "../config/mod.ts";
import type { AdminHandler, ServerStatusJson } from "../admin/mod.ts";
import { describeBuildError } from "../build/mod.ts";
import type { AccessLog, ServerLog } from "../log/mod.ts";
import type { ProxyHandler } from "../proxy/mod.ts";
import type { StaticCacheStats } from "../static/mod.ts";
import {
  checkForChanges,
  Coalescer,
  type ReloadReport,
  type ReloadState,
} from "../reload/mod.ts";
import type { SpawnedProcess } from "../supervisor/mod.ts";
import { VERSION } from "../version.ts";
import { assertPortsFree, type Listeners, openListeners } from "./listeners.ts";
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
import { createObservers } from "./wiring.ts";
import { ServerHost, type ServerHostParts } from "./host.ts";
import { ADMIN_CLOSE_MS, urlHost, within } from "./_util.ts";
import { serverStatus } from "./_status.ts";
import {
  type DevHooks,
  RESTART_EXIT_CODE,
  RUNNER_ENV,
} from "../dev_contract.ts";

/**
 * The running server: the {@linkcode ServerHost} (config, supervisor,
 * builders) behind a public and an admin listener, with its lifecycle:
 * start, reload, self-upgrade and shutdown.
 */
export class TqServer extends ServerHost {
  readonly startedAt = new Date();
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
  #serverLog: ServerLog | undefined;
  #access: AccessLog | undefined;
  #adminHandler: AdminHandler | undefined;

  private constructor(
    options: ServerOptions,
    parts: ServerHostParts & { serverLog: ServerLog | undefined },
  ) {
    super(resolve(options.root), parts);
    this.#options = options;
    this.#serverLog = parts.serverLog;
    this.#reloadState = { configMtimes: new Map(), serverMtime: 0 };
    this.#reload = new Coalescer(() =>
      checkForChanges(this, this.#reloadState)
    );
    this.finished = new Promise((resolve) => this.#finish = resolve);
  }

  // Dev may hand a warm standby process over instead of spawning one.
  protected override spawnWorker(
    command: string,
    options: Deno.CommandOptions,
  ): SpawnedProcess {
    return this.#dev?.spawn
      ? this.#dev.spawn(command, options)
      : super.spawnWorker(command, options);
  }

  // A replaced instance's WebSockets get 1012, and only its own.
  protected override retireConnections(
    { origin, drainMs }: { origin: string; drainMs: number },
  ): Promise<void> {
    return this.#proxy?.retireWebSockets(origin, drainMs) ?? Promise.resolve();
  }

  /**
   * Loads the config, starts the workers and both listeners.
   *
   * @throws {ConfigError} When a config file is invalid (exit code 2).
   */
  static async start(options: ServerOptions): Promise<TqServer> {
    const root = resolve(options.root);
    const { store, loaded } = await ConfigStore.open({
      root,
      configFile: options.configFile,
      modeFlag: options.mode,
      modeEnv: Deno.env.get("DEPLOYMENT_MODE"),
    });
    // The logger and the metrics exist before the server they report on.
    const ref: { server?: TqServer } = {};
    const observers = createObservers(options, { loaded, root, ref });
    for (const warning of loaded.warnings) {
      observers.log.warn("config warning", { problem: warning });
    }
    const server = new TqServer(options, { store, ...observers });
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
    return serverStatus(this, { startedAt: this.startedAt, port: this.port });
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
      await assertPortsFree(config, this.#options);
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
    // The proxy's limits, static files and compression follow the running config.
    this.configStore.subscribe(({ current }) => listeners.reconfigure(current));
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

export { ConfigError, type ServerOptions, StartCancelled };
