import { dirname, join, resolve } from "node:path";
import { type Logger, silentLogger } from "../log/mod.ts";
import { DEFAULT_BUILD_TIMEOUT_MS } from "../config/defaults.ts";
import type { BuildError } from "./_errors.ts";
import { findProject, mtimeMs, removeQuietly } from "./_files.ts";
import {
  type CommandRunner,
  runCommand,
  type RunOptions,
  type RunResult,
} from "./_run.ts";
import { runsFromSource } from "../runtime.ts";
import { Emitter } from "./emitter.ts";
import {
  EsbuildEmitter,
  type LaunchInfo,
  loadEsbuild,
} from "./esbuild_emitter.ts";
import { ModuleGraphs } from "./module_graph.ts";
import {
  BIN_GITIGNORE,
  type BuildProgress,
  ignoreBuildOutput,
  inLanes,
  logBuildResult,
  PerKeyQueue,
} from "./_batch.ts";

export { BIN_GITIGNORE, type BuildProgress };
import type { BuildFormat, BuildResult, BuildTarget } from "./target.ts";

export type { BuildFormat, BuildResult, BuildTarget, LaunchInfo };

/** Who writes a `bundle`: `deno bundle` (self-contained, for prod) or esbuild in-process (dev). */
export type Bundler = "deno" | "esbuild";

export type { BuildError, CommandRunner, RunOptions, RunResult };

/** Options for {@linkcode Builder}. */
export interface BuilderOptions {
  /** `bundle` (one JavaScript file run by `deno`, fast) or `compile` (standalone executable). Default `"bundle"`. */
  format?: BuildFormat;
  /** Builds run at once by {@linkcode Builder.buildAll}. Default 2. */
  parallel?: number;
  /** deno executable. Default: `Deno.execPath()` when that is deno, else `"deno"` from PATH (a compiled tqserver). */
  denoPath?: string;
  /** Permission flags of the built worker (its `#!` line, or `deno compile` flags). Default `["--allow-all"]`. */
  permissions?: string[];
  /** `deno compile --target`. Default: none (the host). */
  target?: string;
  /** The project's deno.json. Default: the nearest deno.json(c) above the entry, as deno finds it. */
  configPath?: string;
  /** Type-check while building. Default false. */
  check?: boolean;
  /** Minify bundles. Default false. */
  minify?: boolean;
  /**
   * Who writes bundles: `"deno"` (`deno bundle`, self-contained) or
   * `"esbuild"` (in-process and incremental, packages resolved by deno at run
   * time, no type check; falls back to deno when esbuild cannot load).
   * Default `"deno"`.
   */
  bundler?: Bundler;
  /** Rebuild even when the binary is fresh. Default false. */
  force?: boolean;
  /** Receives a progress line per worker from {@linkcode Builder.buildAll}. Default: silent. */
  logger?: Logger;
  /** Runs deno. Default: `Deno.Command` with output captured. */
  run?: CommandRunner;
  /** Called with `bin/{name}` just before a new binary is renamed into place. Default: nothing. */
  onWrite?: (path: string) => void;
  /** A deno command of a build running longer is killed and the build fails. Default 120000. */
  timeoutMs?: number;
  /** Names the timeout in messages. Default `"build.timeout_ms"`. */
  timeoutKey?: string;
}

/** Options for one {@linkcode Builder.build} call. */
export interface BuildCallOptions {
  /** Rebuild even when fresh. Default: the builder's `force`. */
  force?: boolean;
  /** Cancels the build: its deno command is killed and the result is `failed`. */
  signal?: AbortSignal;
  /**
   * The counter behind `buildAll`'s `[2/5] name 180 ms` lines; pass one to
   * several builders to number their builds together. Default: this call's.
   */
  progress?: BuildProgress;
}

function defaultDeno(): string {
  const exec = Deno.execPath();
  return runsFromSource() ? exec : "deno";
}

function checkOptions(format: string, parallel: number, flags: string[]) {
  if (format !== "bundle" && format !== "compile") {
    throw new RangeError(
      `Invalid build format "${format}": expected "bundle" or "compile"`,
    );
  }
  if (!Number.isInteger(parallel) || parallel < 1) {
    throw new RangeError(
      `Invalid parallel builds "${parallel}": expected an integer of at least 1`,
    );
  }
  for (const flag of flags) {
    if (!/^-/.test(flag) || /[\n\r\0]/.test(flag)) {
      throw new RangeError(
        `Invalid permission flag "${flag}": expected a deno flag such as "--allow-net"`,
      );
    }
  }
}

/**
 * Builds TypeScript workers into `bin/{name}`: with `deno bundle` into one
 * JavaScript file behind a `#!/usr/bin/env -S deno run ...` line, or with
 * `deno compile` into a standalone executable. Each binary is written to a
 * temporary file and renamed into place, so nothing ever runs a half-written
 * binary; a failed build leaves the old one byte for byte. Builds are
 * incremental: a binary is rebuilt only when a file of its module graph
 * (from `deno info --json`), deno.json or deno.lock is newer, or when it was
 * built with other flags.
 *
 * @example
 * ```ts
 * const builder = new Builder({ format: "bundle", logger });
 * const [result] = await builder.buildAll([
 *   { name: "index", entry, binPath, dir },
 * ]);
 * if (result?.status === "failed") console.error(result.error?.message);
 * ```
 */
export class Builder {
  #format: BuildFormat;
  #parallel: number;
  #configPath: string | undefined;
  #force: boolean;
  #log: Logger;
  #onWrite: ((path: string) => void) | undefined;
  #graphs: ModuleGraphs;
  #emitter: Emitter;
  #fast: Promise<EsbuildEmitter | undefined> | undefined;
  #fastEmitter: EsbuildEmitter | undefined;
  #queue = new PerKeyQueue();

  /** @throws {RangeError} On an unknown format, `parallel` below 1 or a permission that is not a flag. */
  constructor(options: BuilderOptions = {}) {
    const {
      format = "bundle",
      parallel = 2,
      denoPath = defaultDeno(),
      permissions = ["--allow-all"],
      target,
      configPath,
      check = false,
      minify = false,
      force = false,
      logger = silentLogger,
      run = runCommand,
      onWrite,
      bundler = "deno",
      timeoutMs = DEFAULT_BUILD_TIMEOUT_MS,
      timeoutKey = "build.timeout_ms",
    } = options;
    if (!(timeoutMs > 0)) {
      throw new RangeError(
        `Invalid build timeout "${timeoutMs}": expected a positive number of ms`,
      );
    }
    checkOptions(format, parallel, permissions);
    this.#format = format;
    this.#parallel = parallel;
    this.#configPath = configPath ? resolve(configPath) : undefined;
    this.#force = force;
    this.#log = logger;
    this.#onWrite = onWrite;
    this.#graphs = new ModuleGraphs({
      denoPath,
      configPath: this.#configPath,
      run,
      logger,
      timeoutMs,
    });
    this.#emitter = new Emitter({
      format,
      denoPath,
      permissions,
      target,
      configPath: this.#configPath,
      check,
      minify,
      run,
      logger,
      timeoutMs,
      timeoutKey,
    });
    if (format === "bundle" && bundler === "esbuild") {
      this.#fast = loadEsbuild().then((mod) => {
        if (!mod) {
          logger.warn("esbuild is not available, dev builds use deno bundle", {
            hint: "npm:esbuild could not be loaded",
          });
          return undefined;
        }
        this.#fastEmitter = new EsbuildEmitter(mod, {
          permissions,
          minify,
          logger,
          timeoutMs,
          timeoutKey,
        });
        return this.#fastEmitter;
      });
    }
  }

  /** How the bundle at `binPath` is run, when this builder wrote it with esbuild (for warm standby processes). */
  launchInfo(binPath: string): LaunchInfo | undefined {
    return this.#fastEmitter?.launchInfo(binPath);
  }

  /** Releases the in-process bundler (esbuild's service process), if one was started. */
  async close(): Promise<void> {
    const fast = await this.#fast;
    this.#fast = undefined;
    this.#fastEmitter = undefined;
    await fast?.close();
  }

  /** The format this builder writes. */
  get format(): BuildFormat {
    return this.#format;
  }

  /** Local files (absolute paths) of the entry's module graph, from `deno info --json`; cached until {@linkcode invalidate}. */
  graph(target: BuildTarget): Promise<string[]> {
    return this.#graphs.files(target);
  }

  /** True when the binary is missing, was built with other flags, or is older than a file of the graph, deno.json or deno.lock. */
  async isStale(target: BuildTarget): Promise<boolean> {
    const bin = await mtimeMs(target.binPath);
    if (bin === 0) return true;
    const [files, project] = await Promise.all([
      this.graph(target),
      findProject(target.entry, this.#configPath),
    ]);
    if (project) files.push(project.config, project.lock);
    const times = await Promise.all(files.map(mtimeMs));
    // File times come from a coarse clock: a source saved in the same tick
    // as the binary may be newer than it, so equal counts as stale.
    if (times.some((t) => t >= bin)) return true;
    const emitter = (await this.#fast) ?? this.#emitter;
    return !(await emitter.sameFlags(target, project));
  }

  /** Names of the targets whose cached graph (or project config) contains `file`. */
  dependents(file: string): string[] {
    return this.#graphs.dependents(file);
  }

  /** Forgets the cached graph of one worker, or of all. */
  invalidate(name?: string): void {
    this.#graphs.invalidate(name);
  }

  /**
   * Builds one worker unless its binary is fresh (or `force`). Builds of the
   * same worker run one after another. Never throws: a failure is a result
   * with `error`, and the old binary stays as it was.
   */
  build(
    target: BuildTarget,
    options: BuildCallOptions = {},
  ): Promise<BuildResult> {
    const { force = this.#force, signal } = options;
    return this.#queue.run(
      target.name,
      () => this.#build(target, force, signal),
    );
  }

  /** Builds `targets`, `parallel` at a time, with a progress line per worker and a summary. */
  async buildAll(
    targets: BuildTarget[],
    options: BuildCallOptions = {},
  ): Promise<BuildResult[]> {
    const started = performance.now();
    const progress = options.progress ?? { done: 0, total: targets.length };
    const results = await inLanes(targets, async (target) => {
      const result = await this.build(target, options);
      logBuildResult(result, {
        log: this.#log,
        progress,
        format: this.#format,
      });
      return result;
    }, { lanes: this.#parallel });
    const count = (status: BuildResult["status"]) =>
      results.filter((r) => r.status === status).length;
    this.#log.info("build finished", {
      format: this.#format,
      built: count("built"),
      fresh: count("fresh"),
      failed: count("failed"),
      ms: Math.round(performance.now() - started),
    });
    return results;
  }

  async #build(
    target: BuildTarget,
    force: boolean,
    signal: AbortSignal | undefined,
  ): Promise<BuildResult> {
    const { name } = target;
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    const tmp = join(
      dirname(target.binPath),
      `.${name}.tmp-${crypto.randomUUID().slice(0, 8)}`,
    );
    if (signal?.aborted) {
      return {
        name,
        status: "failed",
        ms: 0,
        error: {
          message: `Build of "${name}" was cancelled: the server is stopping`,
        },
      };
    }
    try {
      const cached = this.#graphs.cached(name);
      if (!force && !(await this.isStale(target))) {
        return { name, status: "fresh", ms: ms() };
      }
      // The graph may have changed with the sources: refresh it while deno
      // builds, unless the staleness check has just loaded it. With esbuild,
      // its own inputs refresh the graph; deno info (which also sees
      // import-mapped local files) runs only while the imports are new.
      const fast = await this.#fast;
      const refresh = () =>
        this.#graphs.load(target, signal).catch((err) =>
          this.#log.warn("module graph refresh failed", {
            worker: name,
            error: err,
          })
        );
      const graph = !fast && this.#graphs.cached(name) === cached
        ? refresh()
        : undefined;
      const project = await findProject(target.entry, this.#configPath);
      await Deno.mkdir(dirname(target.binPath), { recursive: true });
      await ignoreBuildOutput(dirname(target.binPath));
      const error = fast
        ? await fast.emit(target, tmp, project)
        : await this.#emitter.emit(target, tmp, project, signal);
      const inputs = fast?.inputs(name);
      if (fast) {
        // esbuild just read the local files: the graph is up to date at once;
        // deno info (import-mapped local files too) completes it in the background.
        if (!error && inputs) this.#graphs.merge(target, inputs);
        if (!cached || !fast.sameExternals(target.binPath)) refresh();
      } else await graph;
      if (error) {
        await removeQuietly(tmp);
        return { name, status: "failed", ms: ms(), error };
      }
      this.#onWrite?.(target.binPath);
      await Deno.rename(tmp, target.binPath);
      return { name, status: "built", ms: ms() };
    } catch (err) {
      await removeQuietly(tmp);
      if (signal?.aborted) {
        return {
          name,
          status: "failed",
          ms: ms(),
          error: {
            message: `Build of "${name}" was cancelled: the server is stopping`,
          },
        };
      }
      const reason = err instanceof Error ? err.message : String(err);
      return {
        name,
        status: "failed",
        ms: ms(),
        error: { message: `Build of "${name}" could not run: ${reason}` },
      };
    }
  }
}

/** What a built worker's `bin/.gitignore` says: everything in that bin/ is build output. */
