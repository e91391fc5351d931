import type { Config, LoadedConfig, Mode, WorkerSpec } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Supervisor } from "../supervisor/mod.ts";
import {
  applyChanges,
  classifyChanges,
  emptyChangeSet,
  type ReloadAction,
  type ReloadReport,
  type WorkerFacts,
} from "../changes/mod.ts";
import { type ReloadState, scanChanges, type ScanResult } from "./scan.ts";

export type { ReloadAction, ReloadReport } from "../changes/mod.ts";

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

/** Options for {@linkcode checkForChanges}. */
export interface CheckOptions {
  /** Only record the current mtimes (at startup). Default false. */
  record?: boolean;
}

/** Makes a validated config the running one: the store tells its subscribers (the supervisor among them). */
function applyConfig(host: ReloadHost, loaded: LoadedConfig): void {
  host.configStore.swap(loaded.config);
}

/**
 * The SIGHUP check (SPEC §6, prod): scans what changed ({@linkcode scanChanges}),
 * classifies it and applies it through the change pipeline, then logs one line.
 * A worker's recorded mtimes move only after its action succeeded, so a failed
 * replace is retried on the next check.
 */
export async function checkForChanges(
  host: ReloadHost,
  state: ReloadState,
  options: CheckOptions = {},
): Promise<ReloadReport> {
  const { record = false } = options;
  const started = performance.now();
  const { log } = host;
  const report: ReloadReport = {
    ms: 0,
    workers: 0,
    config: "unchanged",
    actions: [],
  };
  const scan = await scanChanges(host, state, { record });
  // A candidate that validated is applied below, before any worker action.
  if (record || scan.candidate) {
    scan.configPaths.forEach((p, i) =>
      state.configMtimes.set(p, scan.configMtimes[i]!)
    );
  }
  if (scan.configError !== undefined) {
    report.config = "rejected";
    report.config_error = scan.configError;
  }
  if (!scan.specs) {
    log.error("worker discovery failed, nothing restarted", {
      error: scan.discoverError,
    });
    report.config = "rejected";
    if (scan.discoverError !== undefined) {
      report.config_error = scan.discoverError;
    }
    report.ms = Math.round(performance.now() - started);
    return report;
  }
  report.workers = scan.specs.length;
  const changes = record
    ? emptyChangeSet("scan")
    : classifyChanges(scan.paths, scanContext(host, scan));
  await applyChanges(changes, {
    source: "scan",
    host: {
      log,
      supervisor: host.supervisor,
      applyConfig: (loaded) => applyConfig(host, loaded),
      ...(host.upgrade ? { upgrade: () => host.upgrade!() } : {}),
      ...(host.invalidateStatic
        ? { invalidateStatic: (w: string) => host.invalidateStatic!(w) }
        : {}),
    },
    facts: {
      specs: scan.specs,
      mtimes: scan.mtimes,
      candidate: scan.candidate,
    },
    report,
    record,
  });
  const upgraded = report.actions.some((a) =>
    a.change === "server" && a.action === "upgraded"
  );
  if (record || state.serverMtime === 0 || upgraded) {
    state.serverMtime = scan.serverMtime;
  }

  report.ms = Math.round(performance.now() - started);
  if (!record) logReport(log, report);
  return report;
}

/** What the classifier needs to know of a scan: the workers as discovered now, and which files are config or server code. */
function scanContext(host: ReloadHost, scan: ScanResult) {
  const { supervisor } = host;
  const workers = new Map<string, WorkerFacts>();
  for (const [name, entry] of supervisor.workers) {
    const { kind, dir, binPath } = entry.spec;
    workers.set(name, { kind, dir, binPath });
  }
  // A running worker is judged by its spec on disk now (its binary may have moved).
  for (const { name, kind, dir, binPath } of scan.specs ?? []) {
    if (workers.has(name)) workers.set(name, { kind, dir, binPath });
  }
  return {
    source: "scan" as const,
    root: host.root,
    workersDir: host.config.workers.workers_dir,
    workers,
    configFiles: new Set(scan.configPaths),
    serverFiles: new Set([scan.serverPath]),
    discovered: (scan.specs ?? []).map((s) => s.name),
  };
}

function logReport(log: Logger, report: ReloadReport): void {
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
