import { existsSync } from "node:fs";
import { join, relative, sep } from "node:path";
import type { Config, WorkerSpec } from "../config/mod.ts";
import {
  type BuildResult,
  type BuildTarget,
  describeBuildError,
  type LaunchInfo,
} from "../build/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Supervisor } from "../supervisor/mod.ts";
import { fileMtime, type ReloadReport } from "../reload/mod.ts";
import { matchesAny } from "./_glob.ts";
import { buildErrorEvent, type LiveReload } from "./livereload.ts";

/** What the watcher needs from the server. */
export interface DevHost {
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

/** Options for {@linkcode DevWatcher}. */
export interface DevWatcherOptions {
  /** Quiet time after the last event before acting. Default 50. */
  debounceMs?: number;
  /** Called with a worker's name once its new build serves (dev: background type check). */
  onServed?: (name: string) => void;
  /** Called on every relevant file event (dev: background work steps aside). */
  onActivity?: () => void;
}

/** What one batch of file events did. */
interface BatchSummary {
  built: string[];
  failed: string[];
  replaced: string[];
  private: string[];
  css: string[];
  reload: boolean;
  config: boolean;
  server: boolean;
  /** Longest build of the batch, ms. */
  buildMs: number;
  /** Longest replace (start of the new instance until traffic switched), ms. */
  startMs: number;
}

/** When a batch began and how long it waited for quiet. */
interface BatchTiming {
  firstEventAt: number;
  lastEventAt: number;
  /** Builds started before the debounce ended, by worker. */
  early: Map<string, { startedAt: number; result: Promise<BuildResult> }>;
  waitMs: number;
}

/** Files that change how a Go worker builds, besides its `.go` sources. */
const GO_MODULE_FILES: ReadonlySet<string> = new Set(["go.mod", "go.sum"]);

/** How far before the last event seen a rescan looks for changed files (mtime granularity, clock skew). */
const RESCAN_MARGIN_MS = 2000;
/** Entries a rescan visits at most: it runs on the event loop. */
const RESCAN_MAX_ENTRIES = 200_000;

/** Quiet time after which a batch of source edits starts building, before the debounce ends. */
const SPECULATE_MS = 5;

function ignoredName(name: string): boolean {
  return name.startsWith(".#") || name.endsWith("~") ||
    /\.sw[a-p]x?$/.test(name) || name === "4913" ||
    name.includes(".tmp-") || name.endsWith(".tmp");
}

function targetOf(spec: WorkerSpec): BuildTarget {
  return {
    name: spec.name,
    entry: spec.entry!,
    binPath: spec.binPath,
    dir: spec.dir,
  };
}

/**
 * The dev-mode file watcher (SPEC §6): one recursive `Deno.watchFs` over the
 * project, debounced; each batch rebuilds exactly the workers whose module
 * graph contains a changed file and replaces them, signals or replaces on
 * `private/` changes, swaps CSS, applies config, and restarts the server when
 * its own source changes. Build outputs it writes never trigger anything.
 */
export class DevWatcher {
  #host: DevHost;
  #live: LiveReload;
  #debounceMs: number;
  #onServed: ((name: string) => void) | undefined;
  #onActivity: (() => void) | undefined;
  #handling = 0;
  #watcher: Deno.FsWatcher | undefined;
  #pending = new Set<string>();
  /** When the first event of the pending batch arrived (performance.now()). */
  #firstEventAt = 0;
  /** When the last relevant event arrived. */
  #lastEventAt = 0;
  /** Wall-clock time of the last relevant event (or the start, or a rescan): what a rescan looks back to. */
  #lastEventWall = Date.now();
  #speculateTimer: ReturnType<typeof setTimeout> | undefined;
  /** Builds started during the debounce wait, by worker. */
  #speculative = new Map<
    string,
    { startedAt: number; result: Promise<BuildResult> }
  >();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #chain: Promise<void> = Promise.resolve();
  #globsFrom: unknown;
  #paths: string[] = [];
  #ignore: string[] = [];

  constructor(
    host: DevHost,
    live: LiveReload,
    options: DevWatcherOptions = {},
  ) {
    const { debounceMs = 50, onServed, onActivity } = options;
    this.#onServed = onServed;
    this.#onActivity = onActivity;
    this.#host = host;
    this.#live = live;
    this.#debounceMs = debounceMs;
  }

  /** Starts watching; returns at once. */
  start(): void {
    this.#watcher = Deno.watchFs(this.#host.root, { recursive: true });
    (async () => {
      for await (const event of this.#watcher!) {
        if (event.flag === "rescan") {
          // The event queue (Deno's or the kernel's) overflowed: events were
          // dropped, a save among them maybe. Say so, and look at the files.
          this.#rescan();
          continue;
        }
        let added = 0;
        for (const path of event.paths) {
          if (!this.#relevant(path)) continue;
          this.#pending.add(path);
          added++;
        }
        if (added === 0) continue;
        this.#lastEventWall = Date.now();
        this.#schedule();
      }
    })().catch((err) =>
      this.#host.log.error("file watcher stopped", { error: err })
    );
  }

  /** Starts (or restarts) the debounce wait of the pending batch. */
  #schedule(): void {
    this.#onActivity?.();
    this.#lastEventAt = performance.now();
    if (this.#timer === undefined) this.#firstEventAt = this.#lastEventAt;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      // One more turn of the event loop first: on a loaded machine the
      // timer can run before file events that are already waiting, which
      // would split one burst of saves into two batches.
      this.#timer = setTimeout(() => this.#flush(), 0);
    }, this.#debounceMs);
    clearTimeout(this.#speculateTimer);
    this.#speculateTimer = setTimeout(
      () => this.#speculate(),
      Math.min(SPECULATE_MS, this.#debounceMs),
    );
  }

  /**
   * After lost events: every watched file changed since shortly before the
   * last event seen joins the pending batch, and each worker folder too, so
   * the batch also runs the reload check (new or removed workers, config).
   */
  #rescan(): void {
    const { root, log, config } = this.#host;
    const since = this.#lastEventWall - RESCAN_MARGIN_MS;
    const started = performance.now();
    let files = 0;
    let visited = 0;
    const walk = (dir: string) => {
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(dir)];
      } catch {
        return; // Removed meanwhile.
      }
      for (const entry of entries) {
        if (++visited > RESCAN_MAX_ENTRIES) return;
        const path = join(dir, entry.name);
        const rel = relative(root, path).split(sep).join("/");
        if (entry.isDirectory) {
          if (matchesAny(`${rel}/x`, this.#ignore)) continue;
          walk(path);
        } else if (this.#relevant(path)) {
          try {
            const mtime = Deno.statSync(path).mtime?.getTime() ?? 0;
            if (mtime < since) continue;
          } catch {
            continue;
          }
          this.#pending.add(path);
          files++;
        }
      }
    };
    this.#relevant(join(root, "main.ts")); // Compiles the globs of the config in force.
    walk(root);
    const workers = join(root, config.workers.workers_dir);
    try {
      for (const entry of Deno.readDirSync(workers)) {
        if (entry.isDirectory) this.#pending.add(join(workers, entry.name));
      }
    } catch {
      // No workers folder: the reload check says what it finds.
    }
    log.warn("file events were lost, rescanning", {
      why:
        "the file watcher's event queue overflowed (too many file changes at once)",
      changed_files: files,
      scanned: visited,
      ms: Math.round(performance.now() - started),
    });
    this.#lastEventWall = Date.now();
    this.#schedule();
  }

  /** True while file events wait for their debounce or are being handled. */
  get busy(): boolean {
    return this.#pending.size > 0 || this.#handling > 0;
  }

  /** Stops watching. */
  close(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#speculateTimer);
    try {
      this.#watcher?.close();
    } catch {
      // Already closed.
    }
  }

  /**
   * A path matters when it matches `file_watcher.watch_patterns` and not
   * `.ignore`, or when it is in a worker's module graph (a shared module may
   * live anywhere). `resources.watch_resource_changes` adds every worker's
   * `public/` and `private/` (true) or takes them out (false).
   */
  #relevant(path: string): boolean {
    const rel = relative(this.#host.root, path).split(sep).join("/");
    if (rel.startsWith("..")) return false;
    const name = rel.slice(rel.lastIndexOf("/") + 1);
    if (ignoredName(name) || (rel.startsWith("server/bin/"))) return false;
    const { file_watcher: settings, resources } =
      this.#host.config.deployment.dev;
    if (this.#globsFrom !== settings) {
      this.#globsFrom = settings;
      const dir = this.#host.config.workers.workers_dir;
      const assets = [`${dir}/*/public/**`, `${dir}/*/private/**`];
      this.#paths = [...settings.watch_patterns];
      this.#ignore = [...settings.ignore];
      if (resources.watch_resource_changes) this.#paths.push(...assets);
      else this.#ignore.push(...assets);
    }
    if (matchesAny(rel, this.#ignore)) return false;
    if (this.#buildOutput(rel)) return false;
    // A folder event (a worker added or removed) matches no file glob.
    const folder = rel.split("/").length === 2 &&
      rel.startsWith(this.#host.config.workers.workers_dir + "/");
    return folder || matchesAny(rel, this.#paths) ||
      this.#host.builder.dependents(path).length > 0;
  }

  /**
   * Builds the workers that a folder change added, before the reload starts
   * them (no "no binary" error); meanwhile their routes answer the building
   * page. Returns the names whose build succeeded; a failed one keeps the
   * building page, with its error over it, until a build succeeds.
   */
  async #buildNewWorkers(): Promise<string[]> {
    const host = this.#host;
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
      this.#live.building(spec.name, spec.route);
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
        this.#live.emit(buildErrorEvent(spec.name, result.error));
      } else built.push(spec.name);
    }));
    return built;
  }

  /** A config edit the reload rejected is shown in browsers until a reload accepts the files. */
  #reportConfig(report: ReloadReport | undefined): void {
    if (!report) return;
    if (report.config === "rejected") {
      const message = report.config_error ?? "The config was rejected";
      const at = /^(.+?\.ya?ml)(?::(\d+))?:/.exec(message);
      this.#live.emit({
        type: "error",
        kind: "config",
        worker: "config",
        message:
          `${message}\n\nThe server keeps running on the last good config.`,
        ...(at ? { file: at[1]! } : {}),
        ...(at?.[2] ? { line: Number(at[2]) } : {}),
      });
    } else this.#live.emit({ type: "ok", kind: "config", worker: "config" });
  }

  /**
   * A file in the bin/ of a worker that tqserver builds (its bundle, its
   * temporary files, its .gitignore): our own output, which must not even
   * restart the debounce wait. A prebuilt worker's bin/ is a deploy and counts.
   */
  #buildOutput(rel: string): boolean {
    const parts = rel.split("/");
    const dir = this.#host.config.workers.workers_dir.replace(
      /^\.\/|\/+$/g,
      "",
    );
    const dirParts = dir.split("/");
    if (dirParts.some((p, i) => parts[i] !== p)) return false;
    const [name, sub] = parts.slice(dirParts.length);
    if (!name || sub !== "bin" || parts.length <= dirParts.length + 2) {
      return false;
    }
    const kind = this.#host.supervisor.workers.get(name)?.spec.kind;
    if (kind) return kind !== "binary";
    const src = join(this.#host.root, dir, name, "src");
    return existsSync(join(src, "main.ts")) || existsSync(join(src, "main.go"));
  }

  /**
   * Starts the builds of a batch of plain source edits before the debounce
   * ends, once the files have been quiet for a few ms. The batch's handler
   * uses such a build only when it started after the batch's last event (so
   * it read what the editor wrote last); otherwise it builds again. The
   * replace itself still waits for the debounce. At most one early build per
   * worker and batch.
   */
  #speculate(): void {
    this.#speculateTimer = undefined;
    const sources = new Set<string>();
    for (const path of this.#pending) {
      if (!this.#plainSource(path)) return;
      sources.add(path);
    }
    for (const name of this.#workersOf(sources)) {
      const entry = this.#host.supervisor.workers.get(name);
      if (!entry || entry.spec.kind !== "typescript" || !entry.spec.entry) {
        continue;
      }
      // One early build per worker and batch: a burst of saves must not
      // queue builds that compete with the watcher for the event loop.
      if (this.#speculative.has(name)) continue;
      this.#speculative.set(name, {
        startedAt: performance.now(),
        result: this.#host.builder.build(targetOf(entry.spec), { force: true }),
      });
    }
  }

  /** A source file of some worker that is neither config, the server's own code, nor a folder change. */
  #plainSource(path: string): boolean {
    const root = this.#host.root;
    const parts = relative(root, path).split(sep);
    const top = parts[0];
    if (!/\.(ts|tsx|js|mjs|json)$/.test(path)) return false;
    if (top === "config" || top === "main.ts") return false;
    if (top === "src") return parts[1] === "worker";
    const workersDir = relative(
      root,
      join(root, this.#host.config.workers.workers_dir),
    );
    if (top === workersDir) return parts.length >= 4 && parts[2] === "src";
    return true;
  }

  /** The workers a set of changed source files belongs to. */
  #workersOf(sources: Set<string>): Set<string> {
    const { root, builder } = this.#host;
    const workersDir = this.#host.config.workers.workers_dir;
    const names = new Set<string>();
    for (const file of sources) {
      for (const name of builder.dependents(file)) names.add(name);
      const parts = relative(join(root, workersDir), file).split(sep);
      // A new file under src/ is in no graph yet: it belongs to that worker (a test file never does).
      const underSrc = parts.length > 2 && parts[1] === "src" &&
        !parts[0]!.startsWith("..");
      if (underSrc && !/_test\.tsx?$/.test(file)) names.add(parts[0]!);
    }
    return names;
  }

  #flush(): void {
    const batch = [...this.#pending];
    const firstEventAt = this.#firstEventAt;
    const lastEventAt = this.#lastEventAt;
    // The batch takes its early builds; the next batch starts its own.
    const early = new Map(this.#speculative);
    this.#speculative.clear();
    this.#pending.clear();
    this.#timer = undefined;
    const waitMs = performance.now() - firstEventAt;
    this.#handling++;
    this.#chain = this.#chain.then(() =>
      this.#handle(batch, { firstEventAt, lastEventAt, waitMs, early })
    ).finally(() => this.#handling--).catch((err) =>
      this.#host.log.error("file change handling failed", { error: err })
    );
  }

  async #handle(paths: string[], timing: BatchTiming): Promise<void> {
    const host = this.#host;
    const { root, supervisor, log } = host;
    const workersDir = host.config.workers.workers_dir;
    const summary: BatchSummary = {
      built: [],
      failed: [],
      replaced: [],
      private: [],
      css: [],
      reload: false,
      config: false,
      server: false,
      buildMs: 0,
      startMs: 0,
    };
    const sources = new Set<string>();
    const drops = new Set<string>();
    const privates = new Set<string>();
    const goChanged = new Set<string>();
    let structure = false;
    const byBinary = new Map(
      [...supervisor.workers.values()].map((e) => [e.spec.binPath, e.spec]),
    );
    for (const path of paths) {
      const parts = relative(root, path).split(sep);
      const top = parts[0];
      const owner = byBinary.get(path);
      if (owner) {
        // A built worker's binary is our own output; a prebuilt worker's is a deploy.
        if (owner.kind === "binary") drops.add(owner.name);
        continue;
      }
      if (
        top === "config" && parts.length === 2 && /\.ya?ml$/.test(parts[1]!)
      ) {
        summary.config = true;
      } else if (
        top === "main.ts" ||
        (top === "src" && parts[1] !== "worker" && !/_test\.tsx?$/.test(path))
      ) {
        summary.server = true;
      } else if (
        relative(root, join(root, workersDir)) === top && parts.length >= 2
      ) {
        const name = parts[1]!;
        const sub = parts[2];
        const spec = supervisor.workers.get(name)?.spec;
        if (parts.length <= 3 && sub !== "public" && sub !== "private") {
          structure = true;
        }
        if (sub === "bin") {
          // Build leftovers or other files beside a binary: nothing to do.
        } else if (sub === "public") {
          host.invalidateStatic?.(name);
          if (path.endsWith(".css")) {
            summary.css.push(`/static/${name}/${parts.slice(3).join("/")}`);
          } else summary.reload = true;
        } else if (sub === "private") {
          privates.add(name);
        } else if (
          path.endsWith(".ts") || path.endsWith(".tsx") ||
          path.endsWith(".js") || path.endsWith(".json")
        ) {
          sources.add(path);
        } else if (
          spec?.kind === "go" &&
          (path.endsWith(".go") || GO_MODULE_FILES.has(parts.at(-1)!))
        ) {
          goChanged.add(name);
        }
      } else if (/\.(ts|tsx|js|mjs|json)$/.test(path)) {
        sources.add(path);
      } else if (GO_MODULE_FILES.has(parts.at(-1)!)) {
        // A go.mod above the workers: every Go worker may build with it.
        for (const e of supervisor.workers.values()) {
          if (e.spec.kind === "go") goChanged.add(e.name);
        }
      }
    }

    if (summary.server && host.upgrade) {
      log.info("server source changed, restarting the server");
      await host.upgrade();
      return;
    }
    // A source file of a worker not known yet (its folder came in pieces) is a new worker.
    for (const name of this.#workersOf(sources)) {
      if (!supervisor.workers.has(name)) structure = true;
    }
    let fresh: string[] = [];
    if (summary.config || structure) {
      fresh = structure ? await this.#buildNewWorkers() : [];
      this.#reportConfig(await host.reload());
      for (const name of fresh) this.#live.built(name);
      summary.reload = true;
    }

    const names = this.#workersOf(sources);
    const toReplace: string[] = [];
    // Just built and started by the reload: nothing more to do for them.
    for (const name of fresh) names.delete(name);
    for (const name of goChanged) names.add(name);
    await Promise.all([...names].map(async (name) => {
      const entry = supervisor.workers.get(name);
      if (!entry || entry.spec.kind === "binary" || !entry.spec.entry) {
        return;
      }
      const target = targetOf(entry.spec);
      let result: BuildResult;
      if (entry.spec.kind === "go") {
        if (!goChanged.has(name)) return;
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
        this.#live.emit(buildErrorEvent(name, e));
        return;
      }
      summary.built.push(name);
      this.#live.built(name);
      this.#live.emit({ type: "ok", worker: name });
      if (result.status === "fresh" && entry.active.length > 0) return;
      toReplace.push(name);
    }));

    // Replaces wait for health, which one worker may take long to pass (one
    // that ignores TQ_PORT waits its whole startup_timeout_ms): they finish on
    // their own, so the next batch (another worker's edit) never waits for them.
    // The supervisor runs replaces per worker and coalesces repeated ones.
    this.#finish(toReplace, drops, privates, summary, timing).catch((err) =>
      log.error("file change handling failed", { error: err })
    );
  }

  async #finish(
    toReplace: string[],
    drops: Set<string>,
    privates: Set<string>,
    summary: BatchSummary,
    timing: BatchTiming,
  ): Promise<void> {
    const { supervisor, log } = this.#host;
    await Promise.all(toReplace.map(async (name) => {
      const entry = supervisor.workers.get(name);
      if (!entry) return;
      const replaceStarted = performance.now();
      const replaced = await supervisor.replace(name, "build");
      summary.startMs = Math.max(
        summary.startMs,
        Math.round(performance.now() - replaceStarted),
      );
      if (replaced) {
        summary.replaced.push(name);
        entry.mtimes.binary = await fileMtime(entry.spec.binPath);
      }
    }));

    await Promise.all([...drops].map(async (name) => {
      if (await supervisor.replace(name, "binary-changed")) {
        summary.replaced.push(name);
        const entry = supervisor.workers.get(name);
        if (entry) entry.mtimes.binary = await fileMtime(entry.spec.binPath);
      }
    }));
    await Promise.all([...privates].map(async (name) => {
      if (!supervisor.workers.has(name)) return;
      const result = await supervisor.reloadPrivate(name);
      if (result !== "failed") summary.private.push(name);
    }));

    if (summary.replaced.length || summary.private.length || summary.reload) {
      this.#live.emit({
        type: "reload",
        reason: summary.replaced.length ? "replaced" : "changed",
      });
    } else {
      for (const path of summary.css) this.#live.emit({ type: "css", path });
    }
    // After the browsers were told: the type check must not delay their reload.
    for (const name of summary.replaced) this.#onServed?.(name);
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
}
