import type { Config, WorkerSpec } from "../config/mod.ts";
import {
  type BuildResult,
  type BuildTarget,
  describeBuildError,
  type LaunchInfo,
} from "../build/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Supervisor } from "../supervisor/mod.ts";
import type { ReloadReport } from "./report.ts";
import { fileMtime } from "../reload/mtimes.ts";
import { buildErrorEvent, type LiveReload } from "../dev/livereload.ts";
import type { ChangeSet } from "./classify.ts";

/** What the dev watcher's changes need from the server. */
export interface WatchHost {
  readonly root: string;
  readonly log: Logger;
  readonly supervisor: Supervisor;
  readonly builder: {
    dependents(file: string): string[];
    invalidate(name?: string): void;
    build(
      target: BuildTarget,
      options?: { force?: boolean },
    ): Promise<BuildResult>;
    graph(target: BuildTarget): Promise<string[]>;
    /** How a dev bundle is run (for warm standby processes). */
    launchInfo?(binPath: string): LaunchInfo | undefined;
  };
  /** Builds the Go workers (`src/main.go`). */
  readonly goBuilder: {
    build(
      target: BuildTarget,
      options?: { force?: boolean },
    ): Promise<BuildResult>;
  };
  config: Config;
  /** The SIGHUP check: applies config, adds and removes workers. */
  reload(): Promise<ReloadReport>;
  /** The workers the folder holds now (dev builds a new one before the reload starts it). */
  discover?(): Promise<WorkerSpec[]>;
  /** Restarts the server on a new process (server source changed). */
  upgrade?(): Promise<boolean>;
  /** Drops a worker's cached static files: something in its `public/` changed. */
  invalidateStatic?(worker: string): void;
}

/** A build started before the debounce ended. */
export interface EarlyBuild {
  startedAt: number;
  result: Promise<BuildResult>;
}

/** When a batch of file events began and how long it waited for quiet. */
export interface BatchTiming {
  firstEventAt: number;
  lastEventAt: number;
  /** Builds started before the debounce ended, by worker. */
  early: ReadonlyMap<string, EarlyBuild>;
  waitMs: number;
}

/** How the changes of one batch of file events are carried out. */
export interface WatchApply {
  source: "watch";
  host: WatchHost;
  live: LiveReload;
  timing: BatchTiming;
  /** Called with a worker's name once its new build serves. */
  onServed?: ((name: string) => void) | undefined;
}

/** What one batch did, for its log line. */
interface BatchSummary {
  built: string[];
  failed: string[];
  replaced: string[];
  private: string[];
  reload: boolean;
  /** Longest build of the batch, ms. */
  buildMs: number;
  /** Longest replace (start of the new instance until traffic switched), ms. */
  startMs: number;
}

/** How a worker is built. */
export function targetOf(spec: WorkerSpec): BuildTarget {
  return {
    name: spec.name,
    entry: spec.entry!,
    binPath: spec.binPath,
    dir: spec.dir,
  };
}

/**
 * Carries out the changes of a batch of dev file events: drops static
 * caches, restarts the server, builds new workers and runs the reload check,
 * rebuilds the changed workers, then (without the caller waiting) replaces
 * them, signals `private/` changes and tells the browsers.
 */
export async function applyWatch(
  changes: ChangeSet,
  apply: WatchApply,
): Promise<void> {
  const { host, live, timing } = apply;
  const { supervisor, log } = host;
  for (const name of changes.statics) host.invalidateStatic?.(name);
  if (changes.server && host.upgrade) {
    log.info("server source changed, restarting the server");
    await host.upgrade();
    return;
  }
  const summary: BatchSummary = {
    built: [],
    failed: [],
    replaced: [],
    private: [],
    reload: changes.pageReload,
    buildMs: 0,
    startMs: 0,
  };
  let fresh: string[] = [];
  if (changes.config || changes.structure) {
    fresh = changes.structure ? await buildNewWorkers(host, live) : [];
    reportConfig(live, await host.reload());
    for (const name of fresh) live.built(name);
    summary.reload = true;
  }
  // Just built and started by the reload: nothing more to do for them.
  const names = changes.builds.filter((name) =>
    !fresh.includes(name) || changes.goBuilds.includes(name)
  );
  const toReplace: string[] = [];
  await Promise.all(names.map(async (name) => {
    const entry = supervisor.workers.get(name);
    if (!entry || entry.spec.kind === "binary" || !entry.spec.entry) return;
    const target = targetOf(entry.spec);
    let result: BuildResult;
    if (entry.spec.kind === "go") {
      if (!changes.goBuilds.includes(name)) return;
      result = await host.goBuilder.build(target);
    } else {
      // The build refreshes the module graph itself; dropping it first would
      // leave the worker in no graph while it builds.
      const early = timing.early.get(name);
      result = early && early.startedAt > timing.lastEventAt
        ? await early.result
        : await host.builder.build(target, { force: true });
    }
    summary.buildMs = Math.max(summary.buildMs, result.ms);
    log.info("build", { worker: name, status: result.status, ms: result.ms });
    if (result.status === "failed") {
      summary.failed.push(name);
      const e = result.error;
      supervisor.noteError(name, describeBuildError(e));
      log.error("build failed, old instance keeps serving", {
        worker: name,
        file: e?.file,
        line: e?.line,
        error: e?.message,
      });
      live.emit(buildErrorEvent(name, e));
      return;
    }
    summary.built.push(name);
    live.built(name);
    live.emit({ type: "ok", worker: name });
    if (result.status === "fresh" && entry.active.length > 0) return;
    toReplace.push(name);
  }));

  // Replaces wait for health, which one worker may take long to pass (one
  // that ignores TQ_PORT waits its whole startup_timeout_ms): they finish on
  // their own, so the next batch (another worker's edit) never waits for them.
  // The supervisor runs replaces per worker and coalesces repeated ones.
  finish(changes, { apply, toReplace, summary }).catch((err) =>
    log.error("file change handling failed", { error: err })
  );
}

async function finish(
  changes: ChangeSet,
  batch: { apply: WatchApply; toReplace: string[]; summary: BatchSummary },
): Promise<void> {
  const { apply: { host, live, timing, onServed }, toReplace, summary } = batch;
  const { supervisor, log } = host;
  const recordBinary = async (name: string) => {
    const entry = supervisor.workers.get(name);
    if (!entry) return;
    supervisor.recordMtimes(name, {
      binary: await fileMtime(entry.spec.binPath),
    });
  };
  await Promise.all(toReplace.map(async (name) => {
    if (!supervisor.workers.has(name)) return;
    const replaceStarted = performance.now();
    const replaced = await supervisor.replace(name, "build");
    summary.startMs = Math.max(
      summary.startMs,
      Math.round(performance.now() - replaceStarted),
    );
    if (replaced) {
      summary.replaced.push(name);
      await recordBinary(name);
    }
  }));
  await Promise.all(changes.replaces.map(async ({ worker, reason }) => {
    if (await supervisor.replace(worker, reason)) {
      summary.replaced.push(worker);
      await recordBinary(worker);
    }
  }));
  await Promise.all(changes.signals.map(async (name) => {
    if (!supervisor.workers.has(name)) return;
    const result = await supervisor.reloadPrivate(name);
    if (result !== "failed") summary.private.push(name);
  }));

  if (summary.replaced.length || summary.private.length || summary.reload) {
    live.emit({
      type: "reload",
      reason: summary.replaced.length ? "replaced" : "changed",
    });
  } else {
    for (const path of changes.css) live.emit({ type: "css", path });
  }
  // After the browsers were told: the type check must not delay their reload.
  for (const name of summary.replaced) onServed?.(name);
  if (
    summary.built.length || summary.failed.length ||
    summary.replaced.length || summary.private.length
  ) {
    log.info("dev change handled", {
      built: summary.built.join(",") || undefined,
      failed: summary.failed.join(",") || undefined,
      replaced: summary.replaced.join(",") || undefined,
      private: summary.private.join(",") || undefined,
      wait_ms: Math.round(timing.waitMs),
      build_ms: summary.built.length || summary.failed.length
        ? summary.buildMs
        : undefined,
      start_ms: summary.replaced.length ? summary.startMs : undefined,
      total_ms: Math.round(performance.now() - timing.firstEventAt),
    });
  }
}

/**
 * Builds the workers that a folder change added, before the reload starts
 * them (no "no binary" error); meanwhile their routes answer the building
 * page. Returns the names whose build succeeded; a failed one keeps the
 * building page, with its error over it, until a build succeeds.
 */
async function buildNewWorkers(
  host: WatchHost,
  live: LiveReload,
): Promise<string[]> {
  if (!host.discover) return [];
  let specs: WorkerSpec[];
  try {
    specs = await host.discover();
  } catch {
    return []; // The reload reports it.
  }
  const fresh = specs.filter((s) =>
    !host.supervisor.workers.has(s.name) && s.kind !== "binary" && s.entry
  );
  const built: string[] = [];
  await Promise.all(fresh.map(async (spec) => {
    live.building(spec.name, spec.route);
    const target = targetOf(spec);
    const result = spec.kind === "go"
      ? await host.goBuilder.build(target)
      : await host.builder.build(target);
    host.log.info("build", {
      worker: spec.name,
      status: result.status,
      ms: result.ms,
      new: true,
    });
    if (result.status === "failed") {
      host.log.error("build failed", {
        worker: spec.name,
        file: result.error?.file,
        line: result.error?.line,
        error: result.error?.message,
      });
      live.emit(buildErrorEvent(spec.name, result.error));
    } else built.push(spec.name);
  }));
  return built;
}

/** A config edit the reload rejected is shown in browsers until a reload accepts the files. */
function reportConfig(live: LiveReload, report: ReloadReport | undefined) {
  if (!report) return;
  if (report.config === "rejected") {
    const message = report.config_error ?? "The config was rejected";
    const at = /^(.+?\.ya?ml)(?::(\d+))?:/.exec(message);
    live.emit({
      type: "error",
      kind: "config",
      worker: "config",
      message:
        `${message}\n\nThe server keeps running on the last good config.`,
      ...(at ? { file: at[1]! } : {}),
      ...(at?.[2] ? { line: Number(at[2]) } : {}),
    });
  } else live.emit({ type: "ok", kind: "config", worker: "config" });
}
