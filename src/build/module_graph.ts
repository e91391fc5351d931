import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Logger, silentLogger } from "../log/mod.ts";
import { DEFAULT_BUILD_TIMEOUT_MS } from "../config/defaults.ts";
import { parseBuildError } from "./_errors.ts";
import { findProject } from "./_files.ts";
import { type CommandRunner, runCommand } from "./_run.ts";
import type { BuildTarget } from "./target.ts";

/** Options for {@linkcode ModuleGraphs}. */
export interface ModuleGraphsOptions {
  /** deno executable that runs `deno info`. */
  denoPath: string;
  /** The project's deno.json. Default: the nearest deno.json(c) above the entry. */
  configPath?: string | undefined;
  /** Runs deno. Default: `Deno.Command` with output captured. */
  run?: CommandRunner;
  /** Logger for timings and failures. Default: silent. */
  logger?: Logger;
  /** `deno info` running longer is killed (the last known graph stays). Default 120000. */
  timeoutMs?: number;
}

interface Graph {
  entry: string;
  files: Set<string>;
}

/**
 * The local files each worker's entry imports, from `deno info --json`,
 * cached per worker: which files a worker depends on, and which workers a
 * changed file affects. Knows nothing about bundling or compiling.
 */
export class ModuleGraphs {
  #deno: string;
  #configPath: string | undefined;
  #run: CommandRunner;
  #log: Logger;
  #timeoutMs: number;
  #graphs = new Map<string, Graph>();

  constructor(options: ModuleGraphsOptions) {
    const {
      denoPath,
      configPath,
      run = runCommand,
      logger = silentLogger,
      timeoutMs = DEFAULT_BUILD_TIMEOUT_MS,
    } = options;
    this.#timeoutMs = timeoutMs;
    this.#deno = denoPath;
    this.#configPath = configPath;
    this.#run = run;
    this.#log = logger;
  }

  /** Local files (absolute paths) of the entry's module graph; cached until {@linkcode invalidate}. */
  async files(target: BuildTarget): Promise<string[]> {
    const cached = this.#graphs.get(target.name);
    if (cached && cached.entry === target.entry) return [...cached.files];
    return [...(await this.load(target)).files];
  }

  /** The cached graph object of a worker (identity changes on every load). */
  cached(name: string): object | undefined {
    return this.#graphs.get(name);
  }

  /** Names of the targets whose cached graph (or project config) contains `file`. */
  dependents(file: string): string[] {
    const path = resolve(file);
    const names: string[] = [];
    for (const [name, graph] of this.#graphs) {
      if (graph.files.has(path)) names.push(name);
    }
    return names;
  }

  /** Adds files a bundler saw to a worker's cached graph (a graph is created when there is none). */
  merge(target: BuildTarget, files: Iterable<string>): void {
    const graph = this.#graphs.get(target.name);
    if (graph && graph.entry === target.entry) {
      for (const file of files) graph.files.add(resolve(file));
      return;
    }
    this.#graphs.set(target.name, {
      entry: target.entry,
      files: new Set([target.entry, ...[...files].map((f) => resolve(f))]),
    });
  }

  /** Forgets the cached graph of one worker, or of all. */
  invalidate(name?: string): void {
    if (name === undefined) this.#graphs.clear();
    else this.#graphs.delete(name);
  }

  /** Runs `deno info --json` on the entry and caches the result. */
  async load(
    target: BuildTarget,
    signal?: AbortSignal,
  ): Promise<{ files: Set<string> }> {
    const started = performance.now();
    const previous = this.#graphs.get(target.name);
    const files = new Set<string>([target.entry]);
    const flags = this.#configPath ? ["--config", this.#configPath] : [];
    const res = await this.#run(
      this.#deno,
      ["info", "--json", ...flags, target.entry],
      {
        cwd: target.dir,
        timeoutMs: this.#timeoutMs,
        ...(signal ? { signal } : {}),
      },
    );
    if (res.killed) {
      this.#log.warn("deno info killed", {
        worker: target.name,
        why: res.killed,
        timeout_ms: this.#timeoutMs,
      });
    }
    if (res.success) {
      const info = JSON.parse(res.stdout) as {
        modules?: { specifier?: string }[];
      };
      for (const mod of info.modules ?? []) {
        // Missing local files count too: creating one must trigger a build.
        if (mod.specifier?.startsWith("file://")) {
          files.add(fileURLToPath(mod.specifier));
        }
      }
    } else {
      // deno info fails only when the entry itself is unusable; keep what we knew.
      this.#log.debug("deno info failed", {
        worker: target.name,
        error: parseBuildError(res.stderr).message,
      });
      if (previous?.entry === target.entry) {
        for (const file of previous.files) files.add(file);
      }
    }
    const project = await findProject(target.entry, this.#configPath);
    if (project) files.add(project.config).add(project.lock);
    const graph = { entry: target.entry, files };
    this.#graphs.set(target.name, graph);
    this.#log.debug("deno info", {
      worker: target.name,
      ms: Math.round(performance.now() - started),
      files: files.size,
    });
    return graph;
  }
}
