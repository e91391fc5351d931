import { dirname, join } from "node:path";
import { type Logger, silentLogger } from "../log/mod.ts";
import { type BuildError, parseBuildError } from "./_errors.ts";

export type { BuildError };

/** A TypeScript worker to build. */
export interface BuildTarget {
  /** Worker name. */
  name: string;
  /** Absolute path of `src/main.ts`. */
  entry: string;
  /** Absolute path of `bin/{name}`. */
  binPath: string;
  /** Absolute path of the worker folder. */
  dir: string;
}

/** Outcome of one build. */
export interface BuildResult {
  name: string;
  /** `built` wrote a new binary; `fresh` found it up to date; `failed` left the old one in place. */
  status: "built" | "fresh" | "failed";
  ms: number;
  error?: BuildError;
}

/** Options for {@linkcode Builder}. */
export interface BuilderOptions {
  /** `bundle` (needs deno at run time) or `compile` (standalone). Default `"bundle"`. */
  format?: "bundle" | "compile";
  /** Builds at once. Default 2. */
  parallel?: number;
  /** deno executable. Default: this process's when it is deno, else `"deno"` from PATH. */
  denoPath?: string;
  /** Permission flags of the built worker. Default `["--allow-all"]`. */
  permissions?: string[];
  /** `deno compile --target`. Default: the host. */
  target?: string;
  /** deno.json of the project. Default: found by deno from the entry's folder. */
  configPath?: string;
  /** Build even when the binary is fresh. Default false. */
  force?: boolean;
  /** Logger for progress lines. Default silent. */
  logger?: Logger;
}

/** Options for one {@linkcode Builder.build} call. */
export interface BuildCallOptions {
  /** Build even when fresh. Default: the builder's `force`. */
  force?: boolean;
}

const decoder = new TextDecoder();

function defaultDeno(): string {
  const exec = Deno.execPath();
  return /(^|\/)deno(\.exe)?$/.test(exec) ? exec : "deno";
}

async function mtime(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

function randomSuffix(): string {
  return crypto.randomUUID().slice(0, 8);
}

/**
 * Builds TypeScript workers into `bin/{name}`: with `deno bundle` into one
 * file behind a `deno run` shebang, or with `deno compile` into a standalone
 * executable. Writes go to a temporary file that is renamed into place, so
 * nothing ever runs a half-written binary; a failed build leaves the old one.
 * Builds are incremental by the mtimes of the module graph (`deno info --json`).
 *
 * @example
 * ```ts
 * const builder = new Builder({ format: "bundle", logger });
 * const [result] = await builder.buildAll([{ name, entry, binPath, dir }]);
 * ```
 */
export class Builder {
  #format: "bundle" | "compile";
  #parallel: number;
  #deno: string;
  #permissions: string[];
  #target: string | undefined;
  #config: string | undefined;
  #force: boolean;
  #log: Logger;
  #graphs = new Map<string, Set<string>>();

  constructor(options: BuilderOptions = {}) {
    const {
      format = "bundle",
      parallel = 2,
      denoPath = defaultDeno(),
      permissions = ["--allow-all"],
      target,
      configPath,
      force = false,
      logger = silentLogger,
    } = options;
    this.#format = format;
    this.#parallel = Math.max(1, parallel);
    this.#deno = denoPath;
    this.#permissions = permissions;
    this.#target = target || undefined;
    this.#config = configPath;
    this.#force = force;
    this.#log = logger;
  }

  #configArgs(): string[] {
    return this.#config ? ["--config", this.#config] : [];
  }

  async #run(
    args: string[],
    cwd: string,
  ): Promise<{ ok: boolean; stdout: string; stderr: string }> {
    const out = await new Deno.Command(this.#deno, {
      args,
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    }).output();
    return {
      ok: out.success,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  }

  /** Local files of the entry's module graph (absolute paths), cached until {@linkcode invalidate}. */
  async graph(target: BuildTarget): Promise<string[]> {
    const cached = this.#graphs.get(target.name);
    if (cached) return [...cached];
    return [...await this.#loadGraph(target)];
  }

  async #loadGraph(target: BuildTarget): Promise<Set<string>> {
    const files = new Set<string>([target.entry]);
    const res = await this.#run([
      "info",
      "--json",
      ...this.#configArgs(),
      target.entry,
    ], target.dir);
    if (res.ok) {
      const info = JSON.parse(res.stdout) as {
        modules?: { specifier: string }[];
      };
      for (const mod of info.modules ?? []) {
        if (mod.specifier.startsWith("file://")) {
          files.add(decodeURIComponent(new URL(mod.specifier).pathname));
        }
      }
    } else {
      // A graph that does not resolve still names the entry; keep what we knew before.
      for (const f of this.#graphs.get(target.name) ?? []) files.add(f);
    }
    this.#graphs.set(target.name, files);
    return files;
  }

  /** True when the binary is missing or older than any file of the module graph or the project config. */
  async isStale(target: BuildTarget): Promise<boolean> {
    const bin = await mtime(target.binPath);
    if (bin === 0) return true;
    const files = await this.graph(target);
    if (this.#config) {
      files.push(this.#config, join(dirname(this.#config), "deno.lock"));
    }
    const times = await Promise.all(files.map(mtime));
    return times.some((t) => t > bin);
  }

  /** Names of built targets whose module graph contains `file`. */
  dependents(file: string): string[] {
    const names: string[] = [];
    for (const [name, files] of this.#graphs) {
      if (files.has(file)) names.push(name);
    }
    return names;
  }

  /** Forgets cached graphs (all, or one worker's). */
  invalidate(name?: string): void {
    if (name === undefined) this.#graphs.clear();
    else this.#graphs.delete(name);
  }

  /** Builds one worker when stale (or forced); the old binary stays on failure. */
  async build(
    target: BuildTarget,
    options: BuildCallOptions = {},
  ): Promise<BuildResult> {
    const { force = this.#force } = options;
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    if (!force && !(await this.isStale(target))) {
      return { name: target.name, status: "fresh", ms: elapsed() };
    }
    const binDir = dirname(target.binPath);
    await Deno.mkdir(binDir, { recursive: true });
    const tmp = join(binDir, `.${target.name}.tmp-${randomSuffix()}`);
    // The graph is refreshed alongside the build: it costs no extra wall time.
    const graph = this.#loadGraph(target);
    try {
      const error = this.#format === "bundle"
        ? await this.#bundle(target, tmp)
        : await this.#compile(target, tmp);
      await graph;
      if (error) {
        await Deno.remove(tmp).catch(() => {});
        return { name: target.name, status: "failed", ms: elapsed(), error };
      }
      await Deno.rename(tmp, target.binPath);
      return { name: target.name, status: "built", ms: elapsed() };
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw new Error(`Build of "${target.name}" could not run`, {
        cause: err,
      });
    }
  }

  async #bundle(
    target: BuildTarget,
    tmp: string,
  ): Promise<BuildError | undefined> {
    const js = `${tmp}.js`;
    try {
      const res = await this.#run(
        [
          "bundle",
          "--quiet",
          "--platform",
          "deno",
          ...this.#configArgs(),
          "--output",
          js,
          target.entry,
        ],
        target.dir,
      );
      if (!res.ok) return parseBuildError(res.stderr);
      const code = await Deno.readTextFile(js);
      const shebang = `#!/usr/bin/env -S deno run --no-config ${
        this.#permissions.join(" ")
      }\n`;
      await Deno.writeTextFile(tmp, shebang + code, { mode: 0o755 });
      await Deno.chmod(tmp, 0o755);
      return undefined;
    } finally {
      await Deno.remove(js).catch(() => {});
    }
  }

  async #compile(
    target: BuildTarget,
    tmp: string,
  ): Promise<BuildError | undefined> {
    const args = [
      "compile",
      "--quiet",
      ...this.#configArgs(),
      ...this.#permissions,
    ];
    if (this.#target) args.push("--target", this.#target);
    args.push("--output", tmp, target.entry);
    const res = await this.#run(args, target.dir);
    if (res.ok) return undefined;
    if (
      /denort|download|dl\.deno\.land|error sending request|failed to fetch/i
        .test(res.stderr)
    ) {
      return {
        message:
          `deno compile could not get its runtime (denort): it downloads it unless DENORT_BIN names a ` +
          `local copy. Set DENORT_BIN=/path/to/denort, build where the download works, or use build format ` +
          `"bundle".\n${parseBuildError(res.stderr).message}`,
      };
    }
    return parseBuildError(res.stderr);
  }

  /** Builds targets, `parallel` at a time, logging one progress line per worker. */
  async buildAll(
    targets: BuildTarget[],
    options: BuildCallOptions = {},
  ): Promise<BuildResult[]> {
    const results: BuildResult[] = new Array(targets.length);
    let next = 0;
    const lane = async () => {
      while (next < targets.length) {
        const i = next++;
        const target = targets[i]!;
        let result: BuildResult;
        try {
          result = await this.build(target, options);
        } catch (err) {
          result = {
            name: target.name,
            status: "failed",
            ms: 0,
            error: { message: String(err) },
          };
        }
        results[i] = result;
        const fields = {
          worker: target.name,
          status: result.status,
          ms: result.ms,
          format: this.#format,
        };
        if (result.status === "failed") {
          this.#log.error("build failed", {
            ...fields,
            file: result.error?.file,
            line: result.error?.line,
            error: result.error?.message,
          });
        } else this.#log.info("build", fields);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.#parallel, targets.length) }, lane),
    );
    return results;
  }
}
