import { existsSync } from "node:fs";
import { join, relative, sep } from "node:path";
import type { Config } from "../config/mod.ts";
import type { Supervisor } from "../supervisor/mod.ts";
import { matchesAny } from "./_glob.ts";

/** What the filter reads from the server (the config may change while it runs). */
export interface RelevantHost {
  readonly root: string;
  readonly supervisor: Supervisor;
  readonly config: Config;
  readonly builder: { dependents(file: string): string[] };
}

function ignoredName(name: string): boolean {
  return name.startsWith(".#") || name.endsWith("~") ||
    /\.sw[a-p]x?$/.test(name) || name === "4913" ||
    name.includes(".tmp-") || name.endsWith(".tmp");
}

/**
 * Which file events the dev watcher collects. A path matters when it matches
 * `file_watcher.watch_patterns` and not `.ignore`, or when it is in a
 * worker's module graph (a shared module may live anywhere).
 * `resources.watch_resource_changes` adds every worker's `public/` and
 * `private/` (true) or takes them out (false). Build outputs never matter.
 */
export class RelevantPaths {
  #host: RelevantHost;
  #globsFrom: unknown;
  #paths: string[] = [];
  #ignore: string[] = [];

  constructor(host: RelevantHost) {
    this.#host = host;
  }

  /** True when a change of `path` (absolute) is worth a batch. */
  relevant(path: string): boolean {
    const rel = relative(this.#host.root, path).split(sep).join("/");
    if (rel.startsWith("..")) return false;
    const name = rel.slice(rel.lastIndexOf("/") + 1);
    if (ignoredName(name) || (rel.startsWith("server/bin/"))) return false;
    this.#compile();
    if (matchesAny(rel, this.#ignore)) return false;
    if (this.#buildOutput(rel)) return false;
    // A folder event (a worker added or removed) matches no file glob.
    const folder = rel.split("/").length === 2 &&
      rel.startsWith(this.#host.config.workers.workers_dir + "/");
    return folder || matchesAny(rel, this.#paths) ||
      this.#host.builder.dependents(path).length > 0;
  }

  /** True when a folder (root-relative, `/`-separated) is ignored as a whole. */
  ignoredFolder(rel: string): boolean {
    this.#compile();
    return matchesAny(`${rel}/x`, this.#ignore);
  }

  /** Compiles the globs of the config in force. */
  #compile(): void {
    const { file_watcher: settings, resources } =
      this.#host.config.deployment.dev;
    if (this.#globsFrom === settings) return;
    this.#globsFrom = settings;
    const dir = this.#host.config.workers.workers_dir;
    const assets = [`${dir}/*/public/**`, `${dir}/*/private/**`];
    this.#paths = [...settings.watch_patterns];
    this.#ignore = [...settings.ignore];
    if (resources.watch_resource_changes) this.#paths.push(...assets);
    else this.#ignore.push(...assets);
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
}

/** Entries a rescan visits at most: it runs on the event loop. */
const RESCAN_MAX_ENTRIES = 200_000;

/** What a rescan found. */
export interface RescanResult {
  /** Relevant files changed since `since`, and every worker folder. */
  paths: string[];
  /** Changed files among them. */
  files: number;
  /** Entries visited. */
  visited: number;
}

/**
 * After lost events: every relevant file changed since `since` (epoch ms),
 * and each worker folder too, so the batch also runs the reload check (new or
 * removed workers, config).
 */
export function rescan(
  filter: RelevantPaths,
  options: { root: string; workersDir: string; since: number },
): RescanResult {
  const { root, workersDir, since } = options;
  const result: RescanResult = { paths: [], files: 0, visited: 0 };
  const walk = (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return; // Removed meanwhile.
    }
    for (const entry of entries) {
      if (++result.visited > RESCAN_MAX_ENTRIES) return;
      const path = join(dir, entry.name);
      const rel = relative(root, path).split(sep).join("/");
      if (entry.isDirectory) {
        if (filter.ignoredFolder(rel)) continue;
        walk(path);
      } else if (filter.relevant(path)) {
        try {
          const mtime = Deno.statSync(path).mtime?.getTime() ?? 0;
          if (mtime < since) continue;
        } catch {
          continue;
        }
        result.paths.push(path);
        result.files++;
      }
    }
  };
  walk(root);
  const workers = join(root, workersDir);
  try {
    for (const entry of Deno.readDirSync(workers)) {
      if (entry.isDirectory) result.paths.push(join(workers, entry.name));
    }
  } catch {
    // No workers folder: the reload check says what it finds.
  }
  return result;
}
