import { dirname, join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { type Logger, silentLogger } from "../log/mod.ts";
import { DEFAULT_BUILD_TIMEOUT_MS } from "../config/defaults.ts";
import type { BuildError } from "./_errors.ts";
import { mtimeMs, removeQuietly } from "./_files.ts";
import type { BuildCallOptions } from "./builder.ts";
import {
  ignoreBuildOutput,
  inLanes,
  logBuildResult,
  PerKeyQueue,
} from "./_batch.ts";
import type { BuildResult, BuildTarget } from "./target.ts";

/** What a finished `go` command printed and how it ended. */
export interface GoRunResult {
  /** Exit code 0. */
  success: boolean;
  /** Killed because it ran past its timeout. */
  timedOut?: boolean;
  /** stdout and stderr, as text. */
  stdout: string;
  stderr: string;
}

/** Runs `go`; injectable for tests. Throws `Deno.errors.NotFound` when there is no such program. */
export type GoRunner = (
  args: string[],
  options: { cwd: string; env: Record<string, string>; timeoutMs: number },
) => Promise<GoRunResult>;

/** Options for {@linkcode GoBuilder}. */
export interface GoBuilderOptions {
  /** `go build -ldflags`; empty = none. Default "". */
  ldflags?: string;
  /** Builds run at once by {@linkcode GoBuilder.buildAll}. Default 2. */
  parallel?: number;
  /** The go executable. Default `"go"` from PATH. */
  goPath?: string;
  /** Rebuild even when the binary is fresh. Default false. */
  force?: boolean;
  /** Longest a single `go build` may take before it is killed. Default 120000. */
  timeoutMs?: number;
  /** The config key of `timeoutMs`, named in the timeout error. Default `build.timeout_ms`. */
  timeoutKey?: string;
  /** Receives a progress line per worker from {@linkcode GoBuilder.buildAll}. Default: silent. */
  logger?: Logger;
  /** Runs go. Default: `Deno.Command` with output captured. */
  run?: GoRunner;
  /** Called with the binary path just before a new binary is renamed into place. Default: nothing. */
  onWrite?: (path: string) => void;
}

/** How to get Go, for the error of a Go worker on a machine without it. */
export const INSTALL_GO =
  `install Go (https://go.dev/doc/install, or "apt-get install golang-go" on Debian/Ubuntu) so that "go" is on PATH`;

const decoder = new TextDecoder();

function runGo(goPath: string): GoRunner {
  return async (args, { cwd, env, timeoutMs }) => {
    const out = await new Deno.Command(goPath, {
      args,
      cwd,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    return {
      success: out.success,
      timedOut: out.signal !== null && !out.success,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  };
}

/** The go.mod that `go build` run in `dir` uses: the nearest one in `dir` or above. */
export async function findGoMod(dir: string): Promise<string | undefined> {
  for (let at = resolve(dir);; at = dirname(at)) {
    const path = join(at, "go.mod");
    if (await mtimeMs(path)) return path;
    if (dirname(at) === at) return undefined;
  }
}

/** Absolute paths of the `.go` files under `dir` (recursively). */
async function goFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return out;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...await goFiles(path));
    else if (entry.name.endsWith(".go")) out.push(path);
  }
  return out;
}

const LOCATION = /^(\S[^:\n]*\.go):(\d+)(?::(\d+))?: (.*)$/m;

/**
 * Turns `go build`'s stderr into a {@linkcode BuildError}: the message without
 * the `# package` headers, and the first `file.go:line:col:` as the location
 * (made absolute against `cwd`).
 */
export function parseGoError(stderr: string, cwd: string): BuildError {
  const message = stderr.split("\n")
    .filter((line) => line.trim() && !line.startsWith("# "))
    .join("\n").trim() || "go build failed without saying why";
  const match = LOCATION.exec(stderr);
  if (!match) return { message };
  return {
    message,
    file: resolve(cwd, match[1]!),
    line: Number(match[2]),
    ...(match[3] ? { column: Number(match[3]) } : {}),
  };
}

/**
 * Builds Go workers (`src/main.go`) with `go build -o bin/{name} ./src`, run
 * in the worker folder, with `-ldflags` when set. A worker with no go.mod in
 * its folder or above is built in GOPATH mode (`GO111MODULE=off`), which is
 * enough for a worker that imports only the standard library. Each binary is
 * written to a temporary file and renamed into place; a failed build leaves
 * the old one as it was. Builds are incremental: a binary is rebuilt only when
 * a `.go` file under `src/`, go.mod or go.sum is newer, or when it was built
 * with other `-ldflags`.
 *
 * @example
 * ```ts
 * const go = new GoBuilder({ ldflags: "-s -w", logger });
 * const [result] = await go.buildAll([{ name: "api", entry, binPath, dir }]);
 * ```
 */
export class GoBuilder {
  #ldflags: string;
  #parallel: number;
  #force: boolean;
  #timeoutMs: number;
  #timeoutKey: string;
  #log: Logger;
  #run: GoRunner;
  #onWrite: ((path: string) => void) | undefined;
  #queue = new PerKeyQueue();
  /** Binary path → `${mtime} ${ldflags}` of what this builder last checked or wrote. */
  #flags = new Map<string, string>();

  /** @throws {RangeError} When `parallel` is below 1. */
  constructor(options: GoBuilderOptions = {}) {
    const {
      ldflags = "",
      parallel = 2,
      goPath = "go",
      force = false,
      timeoutMs = DEFAULT_BUILD_TIMEOUT_MS,
      timeoutKey = "build.timeout_ms",
      logger = silentLogger,
      run = runGo(goPath),
      onWrite,
    } = options;
    if (!Number.isInteger(parallel) || parallel < 1) {
      throw new RangeError(
        `Invalid parallel builds "${parallel}": expected an integer of at least 1`,
      );
    }
    this.#ldflags = ldflags.trim();
    this.#parallel = parallel;
    this.#force = force;
    this.#timeoutMs = timeoutMs;
    this.#timeoutKey = timeoutKey;
    this.#log = logger;
    this.#run = run;
    this.#onWrite = onWrite;
  }

  /** The files whose change makes the binary stale: `src/**\/*.go`, go.mod and go.sum. */
  async inputs(target: BuildTarget): Promise<string[]> {
    const files = await goFiles(join(target.dir, "src"));
    const mod = await findGoMod(target.dir);
    if (mod) files.push(mod, join(dirname(mod), "go.sum"));
    return files;
  }

  /** True when the binary is missing, older than an input, or built with other `-ldflags`. */
  async isStale(target: BuildTarget): Promise<boolean> {
    const bin = await mtimeMs(target.binPath);
    if (bin === 0) return true;
    const times = await Promise.all((await this.inputs(target)).map(mtimeMs));
    // A coarse clock: a source saved in the same tick as the binary counts as newer.
    if (times.some((t) => t >= bin)) return true;
    return (await this.#builtFlags(target.binPath, bin)) !== this.#ldflags;
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
    return this.#queue.run(target.name, () => this.#build(target, force));
  }

  /** Builds `targets`, `parallel` at a time, with a progress line per worker. */
  async buildAll(
    targets: BuildTarget[],
    options: BuildCallOptions = {},
  ): Promise<BuildResult[]> {
    const progress = options.progress ?? { done: 0, total: targets.length };
    const results = await inLanes(targets, async (target) => {
      const result = await this.build(target, options);
      logBuildResult(result, { log: this.#log, progress, format: "go" });
      return result;
    }, { lanes: this.#parallel });
    return results;
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
      if (!force && !(await this.isStale(target))) {
        return { name, status: "fresh", ms: ms() };
      }
      await Deno.mkdir(dirname(target.binPath), { recursive: true });
      const args = ["build", "-o", tmp, "-buildvcs=false"];
      if (this.#ldflags) args.push(`-ldflags=${this.#ldflags}`);
      args.push("./src");
      const env = await this.#env(target.dir);
      let res: GoRunResult;
      try {
        res = await this.#run(args, {
          cwd: target.dir,
          env,
          timeoutMs: this.#timeoutMs,
        });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) {
          return {
            name,
            status: "failed",
            ms: ms(),
            error: {
              message:
                `Worker "${name}" has src/main.go but Go is not installed: ${INSTALL_GO}`,
            },
          };
        }
        throw err;
      }
      this.#log.debug("go build", { worker: name, ms: ms(), ok: res.success });
      if (res.timedOut) {
        await removeQuietly(tmp);
        return {
          name,
          status: "failed",
          ms: ms(),
          error: {
            message: `"go ${
              args.join(" ")
            }" in "${target.dir}" did not finish within ${this.#timeoutMs} ms (${this.#timeoutKey}); the old binary stays`,
          },
        };
      }
      if (!res.success) {
        await removeQuietly(tmp);
        return {
          name,
          status: "failed",
          ms: ms(),
          error: parseGoError(res.stderr, target.dir),
        };
      }
      this.#onWrite?.(target.binPath);
      await Deno.rename(tmp, target.binPath);
      await ignoreBuildOutput(dirname(target.binPath));
      this.#flags.set(
        target.binPath,
        `${await mtimeMs(target.binPath)} ${this.#ldflags}`,
      );
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

  /** The environment of `go build`: GOPATH mode without a go.mod, and a cache dir even without HOME. */
  async #env(dir: string): Promise<Record<string, string>> {
    const env = Deno.env.toObject();
    if (!(await findGoMod(dir))) env.GO111MODULE = "off";
    if (!env.GOCACHE && !env.HOME && !env.XDG_CACHE_HOME) {
      env.GOCACHE = join(tmpdir(), "tqserver-go-cache");
    }
    if (!env.GOPATH && !env.HOME) {
      env.GOPATH = join(tmpdir(), "tqserver-gopath");
    }
    return env;
  }

  /** The `-ldflags` a binary was built with, from memory or `go version -m`. */
  async #builtFlags(binPath: string, mtime: number): Promise<string> {
    const known = this.#flags.get(binPath);
    if (known?.startsWith(`${mtime} `)) return known.slice(`${mtime} `.length);
    let flags = "";
    try {
      const res = await this.#run(["version", "-m", binPath], {
        cwd: dirname(binPath),
        env: Deno.env.toObject(),
        timeoutMs: 30_000,
      });
      const line = /^\s*build\s+-ldflags=(.*)$/m.exec(res.stdout)?.[1];
      if (line !== undefined) flags = line.replace(/^"(.*)"$/, "$1").trim();
      if (!res.success) flags = "\0unknown";
    } catch {
      flags = "\0unknown";
    }
    this.#flags.set(binPath, `${mtime} ${flags}`);
    return flags;
  }
}
