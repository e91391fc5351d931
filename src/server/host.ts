import type { EventLog, WorkerOutputJson } from "../admin/mod.ts";
import type {
  Builder,
  BuildResult,
  BuildTarget,
  GoBuilder,
} from "../build/mod.ts";
import {
  type Config,
  type ConfigStore,
  discoverWorkers,
  type LoadedConfig,
  type Mode,
  unenforcedForWorkers,
  unenforcedSettings,
  type WorkerSpec,
} from "../config/mod.ts";
import type { Logger, LogRecord } from "../log/mod.ts";
import type { ProcessStats, ServerMetrics } from "../metrics/mod.ts";
import { RouteTable } from "../routes/mod.ts";
import { type SpawnedProcess, Supervisor } from "../supervisor/mod.ts";
import { createBuilders } from "./wiring.ts";

/** What a {@linkcode ServerHost} is made of: the running config and the observers that exist before it. */
export interface ServerHostParts {
  /** The one owner of the running config. */
  store: ConfigStore;
  /** The server's logger. */
  log: Logger;
  /** The timeline of `/api/events` and the dashboard. */
  events: EventLog;
  /** The counters of `/metrics`. */
  metrics: ServerMetrics;
  /** Memory and CPU of the server and its workers. */
  processStats: ProcessStats;
  /** Further observers of every log record. */
  recordListeners: Set<(record: LogRecord) => void>;
}

/**
 * The part of the server that reload and dev act on (`ReloadHost`, the dev
 * watcher): the running config, the supervisor with its route table, the
 * builders, and worker discovery. {@linkcode TqServer} adds the listeners
 * and the process lifecycle.
 */
export class ServerHost {
  readonly root: string;
  readonly mode: Mode;
  readonly table = new RouteTable();
  readonly log: Logger;
  /** The timeline of `/api/events` and the dashboard. */
  readonly events: EventLog;
  /** The counters of `/metrics`. */
  readonly metrics: ServerMetrics;
  /** Memory and CPU of the server and its workers, from `/proc`. */
  readonly processStats: ProcessStats;
  /** The one owner of the running config: read, validate, swap, subscribe. */
  readonly configStore: ConfigStore;
  readonly supervisor: Supervisor;
  readonly builder: Builder;
  /** Builds the Go workers (`src/main.go`). */
  readonly goBuilder: GoBuilder;
  #lastDiscoverWarnings = new Set<string>();
  #recordListeners: Set<(record: LogRecord) => void>;

  /** Logs the settings the mode cannot enforce and creates the builders and the supervisor. */
  constructor(root: string, parts: ServerHostParts) {
    const { store, log } = parts;
    this.root = root;
    this.configStore = store;
    this.mode = store.mode;
    this.log = log;
    this.events = parts.events;
    this.metrics = parts.metrics;
    this.processStats = parts.processStats;
    this.#recordListeners = parts.recordListeners;
    const config = store.current;
    for (const { key, where, why } of unenforcedSettings(config, this.mode)) {
      log.warn("setting not enforced", {
        key,
        ...(where ? { where } : {}),
        why,
      });
    }
    const builders = createBuilders(config, {
      root,
      mode: this.mode,
      logger: log,
    });
    this.builder = builders.builder;
    this.goBuilder = builders.goBuilder;
    this.supervisor = new Supervisor(config, {
      mode: this.mode,
      table: this.table,
      logger: log,
      spawn: (command, opts) => this.spawnWorker(command, opts),
      retireConnections: (instance) => this.retireConnections(instance),
    });
    store.subscribe(({ current }) => this.supervisor.setConfig(current));
  }

  /** The config in force (owned by {@linkcode configStore}). */
  get config(): Config {
    return this.configStore.current;
  }

  /** Calls `listener` with every record the server logs from now on (dev: failures shown on the page). */
  onLogRecord(listener: (record: LogRecord) => void): void {
    this.#recordListeners.add(listener);
  }

  /** The config files' paths that tqserver reads (existing or not). */
  configPaths(): string[] {
    return this.configStore.paths();
  }

  /** Re-reads the config files into a candidate; the config in force stays. @throws {ConfigError} */
  loadConfig(): Promise<LoadedConfig> {
    return this.configStore.read();
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
    unenforcedForWorkers(specs, { config, mode: this.mode }).forEach(warn);
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

  /** Starts a worker process; the server lets dev hand a warm standby over instead. */
  protected spawnWorker(
    command: string,
    options: Deno.CommandOptions,
  ): SpawnedProcess {
    return new Deno.Command(command, options).spawn();
  }

  /** Closes what stays connected to a retiring instance; the server ends its WebSockets (1012). */
  protected retireConnections(
    _instance: { worker: string; origin: string; drainMs: number },
  ): Promise<void> {
    return Promise.resolve();
  }
}
