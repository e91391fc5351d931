import {
  applyChanges,
  type BatchTiming,
  type ChangeSet,
  classifyChanges,
  type EarlyBuild,
  targetOf,
  type WatchHost,
  type WorkerFacts,
} from "../changes/mod.ts";
import type { LiveReload } from "./livereload.ts";
import { RelevantPaths, rescan } from "./_relevant.ts";

/** What the watcher needs from the server. */
export type DevHost = WatchHost;

/** Options for {@linkcode DevWatcher}. */
export interface DevWatcherOptions {
  /** Quiet time after the last event before acting. Default 50. */
  debounceMs?: number;
  /** Called with a worker's name once its new build serves (dev: background type check). */
  onServed?: (name: string) => void;
  /** Called on every relevant file event (dev: background work steps aside). */
  onActivity?: () => void;
}

/** How far before the last event seen a rescan looks for changed files (mtime granularity, clock skew). */
const RESCAN_MARGIN_MS = 2000;

/** Quiet time after which a batch of source edits starts building, before the debounce ends. */
const SPECULATE_MS = 5;

/**
 * The dev-mode file watcher (SPEC §6): one recursive `Deno.watchFs` over the
 * project. It collects the relevant file events and debounces them; each
 * batch is classified ({@linkcode classifyChanges}) and carried out
 * (`applyChanges`). Build outputs it writes never trigger anything.
 *
 * @example
 * ```ts
 * const watcher = new DevWatcher(server, live, { debounceMs: 50 });
 * watcher.start();
 * ```
 */
export class DevWatcher {
  #host: DevHost;
  #live: LiveReload;
  #debounceMs: number;
  #onServed: ((name: string) => void) | undefined;
  #onActivity: (() => void) | undefined;
  #filter: RelevantPaths;
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
  #speculative = new Map<string, EarlyBuild>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #chain: Promise<void> = Promise.resolve();

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
    this.#filter = new RelevantPaths(host);
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
          if (!this.#filter.relevant(path)) continue;
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
    const started = performance.now();
    const found = rescan(this.#filter, {
      root,
      workersDir: config.workers.workers_dir,
      since: this.#lastEventWall - RESCAN_MARGIN_MS,
    });
    for (const path of found.paths) this.#pending.add(path);
    log.warn("file events were lost, rescanning", {
      why:
        "the file watcher's event queue overflowed (too many file changes at once)",
      changed_files: found.files,
      scanned: found.visited,
      ms: Math.round(performance.now() - started),
    });
    this.#lastEventWall = Date.now();
    this.#schedule();
  }

  /** What a batch of changed paths triggers, judged on the workers running now. */
  #classify(paths: readonly string[]): ChangeSet {
    const { root, config, supervisor, builder } = this.#host;
    const workers = new Map<string, WorkerFacts>();
    for (const [name, { spec }] of supervisor.workers) {
      workers.set(name, {
        kind: spec.kind,
        dir: spec.dir,
        binPath: spec.binPath,
      });
    }
    return classifyChanges(paths, {
      source: "watch",
      root,
      workersDir: config.workers.workers_dir,
      workers,
      dependents: (path) => builder.dependents(path),
    });
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
    const changes = this.#classify([...this.#pending]);
    if (!changes.early) return;
    for (const name of changes.builds) {
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

  #flush(): void {
    const batch = [...this.#pending];
    const timing: BatchTiming = {
      firstEventAt: this.#firstEventAt,
      lastEventAt: this.#lastEventAt,
      // The batch takes its early builds; the next batch starts its own.
      early: new Map(this.#speculative),
      waitMs: performance.now() - this.#firstEventAt,
    };
    this.#speculative.clear();
    this.#pending.clear();
    this.#timer = undefined;
    this.#handling++;
    this.#chain = this.#chain.then(() =>
      applyChanges(this.#classify(batch), {
        source: "watch",
        host: this.#host,
        live: this.#live,
        timing,
        onServed: this.#onServed,
      })
    ).finally(() => this.#handling--).catch((err) =>
      this.#host.log.error("file change handling failed", { error: err })
    );
  }
}
