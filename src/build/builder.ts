import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Logger, silentLogger } from "../log/mod.ts";
import {
  type BuildError,
  compileRuntimeError,
  parseBuildError,
} from "./_errors.ts";
import {
  findProject,
  mtimeMs,
  type Project,
  readHead,
  removeQuietly,
} from "./_files.ts";
import { launcherHeader } from "./_launcher.ts";
import {
  type CommandRunner,
  runCommand,
  type RunOptions,
  type RunResult,
} from "./_run.ts";
import { runsFromSource } from "../runtime.ts";

export type { BuildError, CommandRunner, RunOptions, RunResult };

/** A TypeScript worker to build. */
export interface BuildTarget {
  /** Worker name (the folder name). */
  name: string;
  /** Absolute path of `src/main.ts`. */
  entry: string;
  /** Absolute path of `bin/{name}`. */
  binPath: string;
  /** Absolute path of the worker folder; deno runs there. */
  dir: string;
}

/** Outcome of one build. */
export interface BuildResult {
  /** Worker name. */
  name: string;
  /** `built` wrote a new binary; `fresh` found it up to date; `failed` left the old one untouched. */
  status: "built" | "fresh" | "failed";
  /** Wall time of the build (or of the freshness check), in milliseconds. */
  ms: number;
  /** Why it failed, located in the source when deno said where. */
  error?: BuildError;
}

/** Output format of a build. */
export type BuildFormat = "bundle" | "compile";

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
  /** Rebuild even when the binary is fresh. Default false. */
  force?: boolean;
  /** Receives a progress line per worker from {@linkcode Builder.buildAll}. Default: silent. */
  logger?: Logger;
  /** Runs deno. Default: `Deno.Command` with output captured. */
  run?: CommandRunner;
  /** Called with `bin/{name}` just before a new binary is renamed into place. Default: nothing. */
  onWrite?: (path: string) => void;
}

/** Options for one {@linkcode Builder.build} call. */
export interface BuildCallOptions {
  /** Rebuild even when fresh. Default: the builder's `force`. */
  force?: boolean;
}

interface Graph {
  entry: string;
  files: Set<string>;
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
  #deno: string;
  #permissions: string[];
  #target: string | undefined;
  #configPath: string | undefined;
  #check: boolean;
  #minify: boolean;
  #force: boolean;
  #log: Logger;
  #run: CommandRunner;
  #onWrite: ((path: string) => void) | undefined;
  #graphs = new Map<string, Graph>();
  #queues = new Map<string, Promise<unknown>>();

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
    } = options;
    checkOptions(format, parallel, permissions);
    this.#format = format;
    this.#parallel = parallel;
    this.#deno = denoPath;
    this.#permissions = [...permissions];
    this.#target = target || undefined;
    this.#configPath = configPath ? resolve(configPath) : undefined;
    this.#check = check;
    this.#minify = minify;
    this.#force = force;
    this.#log = logger;
    this.#run = run;
    this.#onWrite = onWrite;
  }

  /** The format this builder writes. */
  get format(): BuildFormat {
    return this.#format;
  }

  /** Local files (absolute paths) of the entry's module graph, from `deno info --json`; cached until {@linkcode invalidate}. */
  async graph(target: BuildTarget): Promise<string[]> {
    const cached = this.#graphs.get(target.name);
    if (cached && cached.entry === target.entry) return [...cached.files];
    return [...(await this.#loadGraph(target)).files];
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
    return !(await this.#sameFlags(target, project));
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

  /** Forgets the cached graph of one worker, or of all. */
  invalidate(name?: string): void {
    if (name === undefined) this.#graphs.clear();
    else this.#graphs.delete(name);
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
    const { force = this.#force } = options;
    const before = this.#queues.get(target.name) ?? Promise.resolve();
    const result = before.then(() => this.#build(target, force));
    const tail = result.catch(() => {});
    this.#queues.set(target.name, tail);
    tail.then(() => {
      if (this.#queues.get(target.name) === tail) {
        this.#queues.delete(target.name);
      }
    });
    return result;
  }

  /** Builds `targets`, `parallel` at a time, with a progress line per worker and a summary. */
  async buildAll(
    targets: BuildTarget[],
    options: BuildCallOptions = {},
  ): Promise<BuildResult[]> {
    const started = performance.now();
    const results: BuildResult[] = new Array(targets.length);
    let next = 0;
    const lane = async () => {
      while (next < targets.length) {
        const i = next++;
        const result = await this.build(targets[i]!, options);
        results[i] = result;
        this.#progress(result);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.#parallel, targets.length) }, lane),
    );
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

  #progress(result: BuildResult): void {
    const fields = { worker: result.name, ms: result.ms };
    if (result.status === "built") {
      this.#log.info("worker built", { ...fields, format: this.#format });
    } else if (result.status === "fresh") {
      this.#log.info("worker up to date", fields);
    } else {
      const e = result.error;
      this.#log.error("worker build failed", {
        ...fields,
        file: e?.file,
        line: e?.line,
        column: e?.column,
        error: e?.message,
      });
    }
  }

  async #build(target: BuildTarget, force: boolean): Promise<BuildResult> {
    const { name } = target;
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    const tmp = join(
      dirname(target.binPath),
      `.${name}.tmp-${crypto.randomUUID().slice(0, 8)}`,
    );
    try {
      const cached = this.#graphs.get(name);
      if (!force && !(await this.isStale(target))) {
        return { name, status: "fresh", ms: ms() };
      }
      // The graph may have changed with the sources: refresh it while deno
      // builds, unless the staleness check has just loaded it.
      const graph = this.#graphs.get(name) === cached
        ? this.#loadGraph(target).catch((err) =>
          this.#log.warn("module graph refresh failed", {
            worker: name,
            error: err,
          })
        )
        : undefined;
      const project = await findProject(target.entry, this.#configPath);
      await Deno.mkdir(dirname(target.binPath), { recursive: true });
      const error = this.#format === "bundle"
        ? await this.#bundle(target, tmp, project)
        : await this.#compile(target, tmp);
      await graph;
      if (error) {
        await removeQuietly(tmp);
        return { name, status: "failed", ms: ms(), error };
      }
      this.#onWrite?.(target.binPath);
      await Deno.rename(tmp, target.binPath);
      return { name, status: "built", ms: ms() };
    } catch (err) {
      await removeQuietly(tmp);
      const reason = err instanceof Error ? err.message : String(err);
      return {
        name,
        status: "failed",
        ms: ms(),
        error: { message: `Build of "${name}" could not run: ${reason}` },
      };
    }
  }

  async #bundle(
    target: BuildTarget,
    tmp: string,
    project: Project | undefined,
  ): Promise<BuildError | undefined> {
    const args = ["bundle", "--quiet", "--platform", "deno", ...this.#flags()];
    if (this.#minify) args.push("--minify");
    if (this.#check) args.push("--check");
    args.push(target.entry);
    const started = performance.now();
    const res = await this.#run(this.#deno, args, { cwd: target.dir });
    this.#log.debug("deno bundle", {
      worker: target.name,
      ms: Math.round(performance.now() - started),
      code: res.code,
    });
    if (!res.success) return parseBuildError(res.stderr);
    if (res.stdout.length === 0) {
      return { message: "deno bundle succeeded but printed no bundle" };
    }
    const header = this.#header(project);
    await Deno.writeTextFile(tmp, header + res.stdout, { mode: 0o755 });
    // The mode given to writeTextFile is masked by the umask.
    await Deno.chmod(tmp, 0o755);
    return undefined;
  }

  async #compile(
    target: BuildTarget,
    tmp: string,
  ): Promise<BuildError | undefined> {
    // deno compile reads DENORT_BIN itself; a wrong one gets a clear message.
    const denort = Deno.env.get("DENORT_BIN");
    if (denort && (await mtimeMs(denort)) === 0) {
      return {
        message: `DENORT_BIN "${denort}" does not exist: point it at a ` +
          `denort binary of this deno version, or unset it`,
      };
    }
    const args = ["compile", "--quiet", ...this.#flags()];
    if (!this.#check) args.push("--no-check");
    args.push(...this.#permissions);
    if (this.#target) args.push("--target", this.#target);
    args.push("--output", tmp, target.entry);
    const started = performance.now();
    const res = await this.#run(this.#deno, args, { cwd: target.dir });
    this.#log.debug("deno compile", {
      worker: target.name,
      ms: Math.round(performance.now() - started),
      code: res.code,
    });
    if (res.success) return undefined;
    return compileRuntimeError(res.stderr) ?? parseBuildError(res.stderr);
  }

  #flags(): string[] {
    return this.#configPath ? ["--config", this.#configPath] : [];
  }

  #header(project: Project | undefined): string {
    return launcherHeader([...this.#permissions, ...(project?.unstable ?? [])]);
  }

  /** Whether the binary was built in this format (and, for a bundle, with these flags). */
  async #sameFlags(
    target: BuildTarget,
    project: Project | undefined,
  ): Promise<boolean> {
    let head: string;
    try {
      head = await readHead(target.binPath);
    } catch {
      return false;
    }
    if (this.#format === "compile") return !head.startsWith("#!");
    return head.startsWith(this.#header(project));
  }

  async #loadGraph(target: BuildTarget): Promise<Graph> {
    const started = performance.now();
    const previous = this.#graphs.get(target.name);
    const files = new Set<string>([target.entry]);
    const res = await this.#run(
      this.#deno,
      ["info", "--json", ...this.#flags(), target.entry],
      { cwd: target.dir },
    );
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

/** One line for logs and `last_error`: `Build failed at file:line:column: first line of the message`. */
export function describeBuildError(error: BuildError | undefined): string {
  if (!error) return "Build failed";
  const where = error.file
    ? ` at ${error.file}${
      error.line
        ? `:${error.line}${error.column ? `:${error.column}` : ""}`
        : ""
    }`
    : "";
  return `Build failed${where}: ${error.message.split("\n")[0]}`;
}
