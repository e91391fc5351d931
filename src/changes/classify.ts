import { join, relative, sep } from "node:path";
import type { WorkerSpec } from "../config/mod.ts";

/**
 * Where changed paths come from: the dev watcher's file events (`"watch"`), or
 * the mtime scan of a SIGHUP check (`"scan"`; dev runs it too, for config and
 * worker folder changes).
 */
export type ChangeSource = "watch" | "scan";

/** What the classifier knows of a running worker. */
export interface WorkerFacts {
  kind: WorkerSpec["kind"];
  /** The worker's folder (absolute). */
  dir: string;
  /** The binary or bundle it runs (absolute). */
  binPath: string;
}

/** A replace that needs no build first. */
export interface ChangeReplace {
  worker: string;
  reason: "binary-changed";
}

/**
 * Everything one batch of changed paths triggers (SPEC §6): decided by
 * {@linkcode classifyChanges}, carried out by `applyChanges()`.
 */
export interface ChangeSet {
  source: ChangeSource;
  /**
   * Workers to rebuild, then replace (`build`). Names come from the module
   * graph and may not run yet; whether one builds is checked when it builds.
   */
  builds: string[];
  /** Go workers whose Go sources changed: the only Go workers that rebuild. */
  goBuilds: string[];
  /** Workers to replace without a build, with the reason. */
  replaces: ChangeReplace[];
  /** Workers whose `private/` changed: signal or replace (SPEC §4). */
  signals: string[];
  /** Workers whose cached static files are dropped (`public/` changed). */
  statics: string[];
  /** Stylesheet URLs browsers swap without a reload (watch only). */
  css: string[];
  /** Browsers reload the page: a `public/` file other than CSS changed (watch only). */
  pageReload: boolean;
  /** Re-read, validate and apply the config. */
  config: boolean;
  /** Worker folders came or went (watch): build the new ones, then run the reload check. */
  structure: boolean;
  /** Workers to start: on disk, not running (scan). */
  adds: string[];
  /** Workers to stop: running, gone from disk (scan). */
  removes: string[];
  /** The server's own code changed: restart (dev) or self-upgrade (prod). */
  server: boolean;
  /**
   * Every path is a plain source edit (a script or JSON file outside
   * `config/`, the server's code and worker folders' own files): the builds
   * may start before the debounce ends (watch only).
   */
  early: boolean;
}

/** Options for {@linkcode classifyChanges}. */
export interface ClassifyOptions {
  /** Where the paths come from. */
  source: ChangeSource;
  /** The project folder (absolute). */
  root: string;
  /** `workers.workers_dir` of the config in force. */
  workersDir: string;
  /** The running workers, by name. */
  workers: ReadonlyMap<string, WorkerFacts>;
  /** The workers whose module graph contains a file. Default: none. */
  dependents?: (path: string) => string[];
  /** Config files besides `config/*.yaml` (scan: the files read). Default: none. */
  configFiles?: ReadonlySet<string>;
  /** Files that are the server's own code besides `main.ts` and `src/` (scan: its binary). Default: none. */
  serverFiles?: ReadonlySet<string>;
  /** The workers on disk now (scan); when given, others running stop and new ones start. */
  discovered?: readonly string[];
}

/** Files that change how a Go worker builds, besides its `.go` sources. */
const GO_MODULE_FILES: ReadonlySet<string> = new Set(["go.mod", "go.sum"]);
const TEST_FILE = /_test\.tsx?$/;

/** A ChangeSet that triggers nothing. */
export function emptyChangeSet(source: ChangeSource): ChangeSet {
  return {
    source,
    builds: [],
    goBuilds: [],
    replaces: [],
    signals: [],
    statics: [],
    css: [],
    pageReload: false,
    config: false,
    structure: false,
    adds: [],
    removes: [],
    server: false,
    early: false,
  };
}

/**
 * Decides what a batch of changed paths triggers (SPEC §6), for dev's file
 * events and prod's SIGHUP scan alike. Pure: it reads no file and starts
 * nothing; what it knows of the project comes in `options`.
 *
 * @example
 * ```ts
 * const changes = classifyChanges(["/app/workers/index/public/site.css"], {
 *   source: "watch",
 *   root: "/app",
 *   workersDir: "workers",
 *   workers: new Map(),
 * });
 * // changes.statics: ["index"], changes.css: ["/static/index/site.css"]
 * ```
 */
export function classifyChanges(
  paths: readonly string[],
  options: ClassifyOptions,
): ChangeSet {
  const { source, root, workersDir, workers, discovered } = options;
  const dependents = options.dependents ?? (() => []);
  const changes = emptyChangeSet(source);
  const statics = new Set<string>();
  const signals = new Set<string>();
  const goChanged = new Set<string>();
  const sources = new Set<string>();
  const byBinary = new Map(
    [...workers].map(([name, facts]) => [facts.binPath, { name, ...facts }]),
  );
  const workersTop = relative(root, join(root, workersDir));
  for (const path of paths) {
    const parts = relative(root, path).split(sep);
    const top = parts[0];
    const owner = byBinary.get(path);
    if (owner) {
      // A built worker's binary is our own output in dev; a prebuilt one's, or any newer one on SIGHUP, is a deploy.
      if (source === "scan" || owner.kind === "binary") {
        changes.replaces.push({ worker: owner.name, reason: "binary-changed" });
      }
      continue;
    }
    const at = source === "scan" ? workerPath(path, workers) : undefined;
    if (options.configFiles?.has(path)) changes.config = true;
    else if (options.serverFiles?.has(path)) changes.server = true;
    else if (
      !at && top === "config" && parts.length === 2 &&
      /\.ya?ml$/.test(parts[1]!)
    ) {
      changes.config = true;
    } else if (
      !at && (top === "main.ts" ||
        (top === "src" && parts[1] !== "worker" && !TEST_FILE.test(path)))
    ) {
      changes.server = true;
    } else if (at || (workersTop === top && parts.length >= 2)) {
      const [name, sub, ...rest] = at ?? parts.slice(1);
      const kind = workers.get(name!)?.kind;
      if (!at && parts.length <= 3 && sub !== "public" && sub !== "private") {
        changes.structure = true;
      }
      if (sub === "bin") {
        // Build leftovers or other files beside a binary: nothing to do.
      } else if (sub === "public") {
        statics.add(name!);
        if (source === "scan") continue;
        if (path.endsWith(".css")) {
          changes.css.push(`/static/${name}/${rest.join("/")}`);
        } else changes.pageReload = true;
      } else if (sub === "private") {
        signals.add(name!);
      } else if (/\.(ts|tsx|js|json)$/.test(path)) {
        sources.add(path);
      } else if (
        kind === "go" &&
        (path.endsWith(".go") || GO_MODULE_FILES.has(parts.at(-1)!))
      ) {
        goChanged.add(name!);
      }
    } else if (/\.(ts|tsx|js|mjs|json)$/.test(path)) {
      sources.add(path);
    } else if (GO_MODULE_FILES.has(parts.at(-1)!)) {
      // A go.mod above the workers: every Go worker may build with it.
      for (const [name, facts] of workers) {
        if (facts.kind === "go") goChanged.add(name);
      }
    }
  }
  const names = workersOfSources(sources, { root, workersDir, dependents });
  // A source file of a worker not known yet (its folder came in pieces) is a new worker.
  for (const name of names) if (!workers.has(name)) changes.structure = true;
  for (const name of goChanged) names.add(name);
  changes.builds = [...names];
  changes.goBuilds = [...goChanged];
  changes.statics = [...statics];
  changes.signals = [...signals];
  changes.early = source === "watch" && paths.length > 0 &&
    paths.every((path) => plainSource(path, root, workersTop));
  if (discovered) {
    const onDisk = new Set(discovered);
    changes.adds = discovered.filter((name) => !workers.has(name));
    changes.removes = [...workers.keys()].filter((name) => !onDisk.has(name));
  }
  return changes;
}

/** A script or JSON file of some worker: not config, not the server's own code, not a worker folder's own file. */
function plainSource(path: string, root: string, workersTop: string): boolean {
  const parts = relative(root, path).split(sep);
  const top = parts[0];
  if (!/\.(ts|tsx|js|mjs|json)$/.test(path)) return false;
  if (top === "config" || top === "main.ts") return false;
  if (top === "src") return parts[1] === "worker";
  if (top === workersTop) return parts.length >= 4 && parts[2] === "src";
  return true;
}

/** The worker folder a scanned path is in, as `[name, sub, ...rest]`. */
function workerPath(
  path: string,
  workers: ReadonlyMap<string, WorkerFacts>,
): string[] | undefined {
  for (const [name, { dir }] of workers) {
    if (path.startsWith(dir + sep)) {
      return [name, ...relative(dir, path).split(sep)];
    }
  }
  return undefined;
}

/**
 * The workers a set of changed source files belongs to: those whose module
 * graph holds one, and the worker whose `src/` holds a file no graph has yet
 * (a test file never belongs to one).
 */
function workersOfSources(
  sources: Iterable<string>,
  options: {
    root: string;
    workersDir: string;
    dependents: (path: string) => string[];
  },
): Set<string> {
  const { root, workersDir, dependents } = options;
  const names = new Set<string>();
  for (const file of sources) {
    for (const name of dependents(file)) names.add(name);
    const parts = relative(join(root, workersDir), file).split(sep);
    const underSrc = parts.length > 2 && parts[1] === "src" &&
      !parts[0]!.startsWith("..");
    if (underSrc && !TEST_FILE.test(file)) names.add(parts[0]!);
  }
  return names;
}
