import type { LoadedConfig, WorkerSpec } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Supervisor, WorkerMtimes } from "../supervisor/mod.ts";
import type { ChangeSet } from "./classify.ts";
import type { ReloadReport } from "./report.ts";

/** What the changes a reload check found need from the server. */
export interface ScanHost {
  readonly log: Logger;
  readonly supervisor: Supervisor;
  /** Makes a validated config the running one. */
  applyConfig(loaded: LoadedConfig): void;
  /** Starts a successor server; resolves true once it serves and this one is handing over. */
  upgrade?(): Promise<boolean>;
  /** Drops a worker's cached static files: its `public/` is newer. */
  invalidateStatic?(worker: string): void;
}

/** What a reload check's scan saw, besides the changed paths. */
export interface ScanFacts {
  /** The workers on disk (discovered with the candidate config when there is one). */
  specs: readonly WorkerSpec[];
  /** Their mtimes now, by worker. */
  mtimes: ReadonlyMap<string, WorkerMtimes>;
  /** A changed config that validated: applied before any worker action. */
  candidate?: LoadedConfig | undefined;
}

/** How the changes of a reload check are carried out. */
export interface ScanApply {
  source: "scan";
  host: ScanHost;
  facts: ScanFacts;
  /** Filled with what was done. */
  report: ReloadReport;
  /** Only record the mtimes seen (at startup). Default false. */
  record?: boolean;
}

/**
 * Carries out the changes of a reload check (SPEC §6, prod): applies the
 * config, then per worker starts, drops its static cache, replaces (binary
 * newer, or settings changed) or signals `private/`; stops removed workers;
 * upgrades the server last. A worker's mtimes are recorded only after its
 * action succeeded, so a failed one is retried on the next check.
 */
export async function applyScan(
  changes: ChangeSet,
  apply: ScanApply,
): Promise<void> {
  const { host, facts, report, record = false } = apply;
  const { log, supervisor } = host;
  const mtimesOf = (name: string) => facts.mtimes.get(name)!;
  if (record) {
    for (const spec of facts.specs) {
      supervisor.recordMtimes(spec.name, mtimesOf(spec.name));
    }
    return;
  }
  if (changes.config && facts.candidate) {
    for (const warning of facts.candidate.warnings) {
      log.warn("config warning", { problem: warning });
    }
    host.applyConfig(facts.candidate);
    report.config = "applied";
    log.info("config reloaded", { files: facts.candidate.files.length });
  }
  const binaries = new Set(changes.replaces.map((r) => r.worker));
  await Promise.all(facts.specs.map(async (spec) => {
    const { name } = spec;
    const now = mtimesOf(name);
    if (changes.adds.includes(name)) {
      const ok = await supervisor.add(spec);
      report.actions.push({
        worker: name,
        change: "added",
        action: ok ? "started" : "failed",
      });
      supervisor.recordMtimes(name, ok ? now : { ...now, binary: 0 });
      return;
    }
    const entry = supervisor.workers.get(name);
    if (!entry) return;
    // First: a replace below returns early, and the cache must drop the old files anyway.
    if (changes.statics.includes(name)) {
      host.invalidateStatic?.(name);
      report.actions.push({ worker: name, change: "public", action: "none" });
      supervisor.recordMtimes(name, { public: now.public });
    }
    const binaryChanged = binaries.has(name);
    if (binaryChanged || report.config === "applied") {
      const result = await supervisor.update(
        spec,
        binaryChanged ? "binary-changed" : undefined,
      );
      if (result !== "unchanged") {
        report.actions.push({
          worker: name,
          change: binaryChanged ? "binary" : "config",
          action: result,
          ...(result === "failed"
            ? { error: entry.lastError ?? "replace failed" }
            : {}),
        });
        if (result === "replaced") supervisor.recordMtimes(name, now);
        return;
      }
    }
    if (changes.signals.includes(name)) {
      const result = await supervisor.reloadPrivate(name);
      report.actions.push({ worker: name, change: "private", action: result });
      if (result !== "failed") {
        supervisor.recordMtimes(name, { private: now.private });
      }
    }
  }));

  for (const name of changes.removes) {
    await supervisor.remove(name);
    report.actions.push({ worker: name, change: "removed", action: "stopped" });
  }

  if (changes.server && host.upgrade) {
    const ok = await host.upgrade();
    report.actions.push({
      worker: "tqserver",
      change: "server",
      action: ok ? "upgraded" : "failed",
    });
  }
}
