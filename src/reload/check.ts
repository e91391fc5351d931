import { join } from "node:path";
import type { Config, LoadedConfig, Mode, WorkerSpec } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Supervisor } from "../supervisor/mod.ts";
import { fileMtime, newestMtime, workerMtimes } from "./mtimes.ts";
import { runsFromSource } from "../runtime.ts";

/** What the check needs from the server. */
export interface ReloadHost {
  readonly root: string;
  readonly mode: Mode;
  readonly log: Logger;
  readonly supervisor: Supervisor;
  readonly config: Config;
  /** The owner of the running config (`ConfigStore`): a validated candidate is swapped in there. */
  readonly configStore: { swap(config: Config): unknown };
  configPaths(): string[];
  loadConfig(): Promise<LoadedConfig>;
  discover(config?: Config): Promise<WorkerSpec[]>;
  /** Starts a successor server; resolves true once it serves and this one is handing over. */
  upgrade?(): Promise<boolean>;
  /** Drops a worker's cached static files: its `public/` is newer. */
  invalidateStatic?(worker: string): void;
}

/** What the check remembers between runs (worker mtimes live in the supervisor's records). */
export interface ReloadState {
  configMtimes: Map<string, number>;
  serverMtime: number;
}

/** One thing the check did. */
export interface ReloadAction {
  worker: string;
  change:
    | "added"
    | "removed"
    | "binary"
    | "private"
    | "public"
    | "config"
    | "server";
  action:
    | "started"
    | "stopped"
    | "replaced"
    | "signalled"
    | "none"
    | "failed"
    | "upgraded";
  error?: string;
}

/** Result of one check, returned by `POST /api/reload`. */
export interface ReloadReport {
  ms: number;
  /** Workers checked. */
  workers: number;
  config: "unchanged" | "applied" | "rejected";
  config_error?: string;
  actions: ReloadAction[];
}

/** Options for {@linkcode checkForChanges}. */
export interface CheckOptions {
  /** Only record the current mtimes (at startup). Default false. */
  record?: boolean;
}

/** mtime of the server's own code: the binary when compiled, else `main.ts` and `src/`. */
export async function serverMtime(): Promise<number> {
  const exec = Deno.execPath();
  if (!runsFromSource()) return await fileMtime(exec);
  const main = Deno.mainModule.startsWith("file://")
    ? new URL(Deno.mainModule).pathname
    : "";
  if (!main) return 0;
  const [a, b] = await Promise.all([
    fileMtime(main),
    newestMtime(join(main, "..", "src")),
  ]);
  return Math.max(a, b);
}

/**
 * The SIGHUP check (SPEC §6, prod): stats every worker's binary, `public/`,
 * `private/`, the config files and the server's own code, then restarts exactly
 * what changed. A worker's recorded mtimes move only after its action succeeded,
 * so a failed replace is retried on the next check.
 */
export async function checkForChanges(
  host: ReloadHost,
  state: ReloadState,
  options: CheckOptions = {},
): Promise<ReloadReport> {
  const { record = false } = options;
  const started = performance.now();
  const { log, supervisor } = host;
  const report: ReloadReport = {
    ms: 0,
    workers: 0,
    config: "unchanged",
    actions: [],
  };
  const paths = host.configPaths();
  const mtimes = await Promise.all(paths.map(fileMtime));
  const configChanged = !record &&
    paths.some((p, i) => state.configMtimes.get(p) !== mtimes[i]);
  let specs: WorkerSpec[] | undefined;
  if (configChanged) {
    try {
      // Validate everything, routes included, before anything is applied.
      const loaded = await host.loadConfig();
      specs = await host.discover(loaded.config);
      for (const warning of loaded.warnings) {
        log.warn("config warning", { problem: warning });
      }
      host.configStore.swap(loaded.config);
      report.config = "applied";
      log.info("config reloaded", { files: loaded.files.length });
    } catch (err) {
      report.config = "rejected";
      report.config_error = err instanceof Error ? err.message : String(err);
      log.error("config rejected, keeping the old one", {
        error: report.config_error,
      });
    }
  }
  if (record || report.config === "applied") {
    paths.forEach((p, i) => state.configMtimes.set(p, mtimes[i]!));
  }

  if (!specs) {
    try {
      specs = await host.discover(host.config);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      log.error("worker discovery failed, nothing restarted", { error });
      report.config = "rejected";
      report.config_error = error;
      report.ms = Math.round(performance.now() - started);
      return report;
    }
  }

  report.workers = specs.length;
  const seen = new Set<string>();
  await Promise.all(specs.map(async (spec) => {
    seen.add(spec.name);
    const now = await workerMtimes(spec.dir, spec.binPath);
    const entry = supervisor.workers.get(spec.name);
    if (record) {
      if (entry) entry.mtimes = now;
      return;
    }
    if (!entry) {
      const ok = await supervisor.add(spec);
      report.actions.push({
        worker: spec.name,
        change: "added",
        action: ok ? "started" : "failed",
      });
      const added = supervisor.workers.get(spec.name);
      if (added) added.mtimes = ok ? now : { ...now, binary: 0 };
      return;
    }
    const rec = entry.mtimes;
    // First: a replace below returns early, and the cache must drop the old files anyway.
    if (now.public !== rec.public) {
      host.invalidateStatic?.(spec.name);
      report.actions.push({
        worker: spec.name,
        change: "public",
        action: "none",
      });
      rec.public = now.public;
    }
    const binaryChanged = now.binary !== rec.binary;
    if (binaryChanged || report.config === "applied") {
      const result = await supervisor.update(
        spec,
        binaryChanged ? "binary-changed" : undefined,
      );
      if (result !== "unchanged") {
        report.actions.push({
          worker: spec.name,
          change: binaryChanged ? "binary" : "config",
          action: result,
          ...(result === "failed"
            ? { error: entry.lastError ?? "replace failed" }
            : {}),
        });
        if (result === "replaced") entry.mtimes = now;
        return;
      }
    }
    if (now.private !== rec.private) {
      const result = await supervisor.reloadPrivate(spec.name);
      report.actions.push({
        worker: spec.name,
        change: "private",
        action: result,
      });
      if (result !== "failed") rec.private = now.private;
    }
  }));

  for (const name of [...supervisor.workers.keys()]) {
    if (seen.has(name)) continue;
    await supervisor.remove(name);
    report.actions.push({ worker: name, change: "removed", action: "stopped" });
  }

  const self = await serverMtime();
  if (record || state.serverMtime === 0) {
    state.serverMtime = self;
  } else if (self !== state.serverMtime && host.upgrade) {
    const ok = await host.upgrade();
    report.actions.push({
      worker: "tqserver",
      change: "server",
      action: ok ? "upgraded" : "failed",
    });
    if (ok) state.serverMtime = self;
  }

  report.ms = Math.round(performance.now() - started);
  if (!record) {
    for (const a of report.actions) {
      const fields = {
        worker: a.worker,
        change: a.change,
        action: a.action,
        error: a.error,
      };
      if (a.action === "failed") log.error("reload action failed", fields);
      else log.info("reload action", fields);
    }
    log.info(summarizeReload(report), {
      ms: report.ms,
      workers: report.workers,
      config: report.config,
      actions: report.actions.length,
    });
  }
  return report;
}

const REASONS: Record<ReloadAction["change"], string> = {
  added: "added",
  removed: "removed",
  binary: "binary-changed",
  private: "private-changed",
  public: "public-changed",
  config: "config-changed",
  server: "server-upgrade",
};

/**
 * One sentence for a check: `checked 12 workers in 14 ms: 1 replaced
 * (binary-changed), 1 signalled (private-changed)`.
 */
export function summarizeReload(report: ReloadReport): string {
  const counts = new Map<string, number>();
  for (const a of report.actions) {
    const key = `${a.action} (${REASONS[a.change]})`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const parts = [...counts].map(([key, n]) => `${n} ${key}`);
  if (report.config === "applied") parts.unshift("config applied");
  if (report.config === "rejected") {
    parts.unshift(`config rejected (${report.config_error ?? "invalid"})`);
  }
  const workers = `${report.workers} worker${report.workers === 1 ? "" : "s"}`;
  return `checked ${workers} in ${report.ms} ms: ${
    parts.length ? parts.join(", ") : "nothing changed"
  }`;
}
