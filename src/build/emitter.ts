import { type Logger, silentLogger } from "../log/mod.ts";
import { DEFAULT_BUILD_TIMEOUT_MS } from "../config/defaults.ts";
import {
  type BuildError,
  compileRuntimeError,
  parseBuildError,
} from "./_errors.ts";
import { mtimeMs, type Project, readHead } from "./_files.ts";
import { launcherHeader } from "./_launcher.ts";
import { type CommandRunner, runCommand } from "./_run.ts";
import type { BuildFormat, BuildTarget } from "./target.ts";

/** Options for {@linkcode Emitter}. */
export interface EmitterOptions {
  /** `bundle` or `compile`. */
  format: BuildFormat;
  /** deno executable. */
  denoPath: string;
  /** Permission flags of the built worker (its `#!` line, or `deno compile` flags). */
  permissions: string[];
  /** `deno compile --target`. Default: none (the host). */
  target?: string | undefined;
  /** The project's deno.json. Default: the nearest deno.json(c) above the entry. */
  configPath?: string | undefined;
  /** Type-check while building. Default false. */
  check?: boolean;
  /** Minify bundles. Default false. */
  minify?: boolean;
  /** Runs deno. Default: `Deno.Command` with output captured. */
  run?: CommandRunner;
  /** Logger for timings. Default: silent. */
  logger?: Logger;
  /** A deno command running longer is killed and the build fails. Default 120000. */
  timeoutMs?: number;
  /** Names the timeout in messages. Default `"build.timeout_ms"`. */
  timeoutKey?: string;
}

/** Options for {@linkcode killedError}: the timeout the command ran under. */
export interface KilledErrorOptions {
  /** The timeout, in ms. */
  timeoutMs: number;
  /** The setting that names it (`build.timeout_ms`). */
  timeoutKey: string;
}

/** The failure of a deno command (`what`) that was killed, or undefined when it was not. */
export function killedError(
  what: string,
  res: { killed?: "timeout" | "aborted" },
  options: KilledErrorOptions,
): BuildError | undefined {
  const { timeoutMs, timeoutKey } = options;
  if (res.killed === "timeout") {
    return {
      message:
        `${what} ran longer than ${timeoutMs} ms and was killed (${timeoutKey})`,
    };
  }
  if (res.killed === "aborted") {
    return { message: `${what} was cancelled: the server is stopping` };
  }
  return undefined;
}

/**
 * Turns one worker's entry into a binary file: `deno bundle` behind a
 * `#!/usr/bin/env -S deno run ...` line, or `deno compile`. Writes only the
 * path it is given; the builder renames it into place.
 */
export class Emitter {
  #format: BuildFormat;
  #deno: string;
  #permissions: string[];
  #target: string | undefined;
  #configPath: string | undefined;
  #check: boolean;
  #minify: boolean;
  #run: CommandRunner;
  #log: Logger;
  #timeoutMs: number;
  #timeoutKey: string;

  constructor(options: EmitterOptions) {
    const {
      format,
      denoPath,
      permissions,
      target,
      configPath,
      check = false,
      minify = false,
      run = runCommand,
      logger = silentLogger,
      timeoutMs = DEFAULT_BUILD_TIMEOUT_MS,
      timeoutKey = "build.timeout_ms",
    } = options;
    this.#timeoutMs = timeoutMs;
    this.#timeoutKey = timeoutKey;
    this.#format = format;
    this.#deno = denoPath;
    this.#permissions = [...permissions];
    this.#target = target || undefined;
    this.#configPath = configPath;
    this.#check = check;
    this.#minify = minify;
    this.#run = run;
    this.#log = logger;
  }

  /** Writes the binary of `target` to `tmp`; returns why it failed, or undefined. */
  emit(
    target: BuildTarget,
    tmp: string,
    project: Project | undefined,
    signal?: AbortSignal,
  ): Promise<BuildError | undefined> {
    return this.#format === "bundle"
      ? this.#bundle(target, tmp, project, signal)
      : this.#compile(target, tmp, signal);
  }

  #runDeno(args: string[], target: BuildTarget, signal?: AbortSignal) {
    return this.#run(this.#deno, args, {
      cwd: target.dir,
      timeoutMs: this.#timeoutMs,
      ...(signal ? { signal } : {}),
    });
  }

  /** Whether the binary was built in this format (and, for a bundle, with these flags). */
  async sameFlags(
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

  async #bundle(
    target: BuildTarget,
    tmp: string,
    project: Project | undefined,
    signal?: AbortSignal,
  ): Promise<BuildError | undefined> {
    const args = ["bundle", "--quiet", "--platform", "deno", ...this.#flags()];
    if (this.#minify) args.push("--minify");
    if (this.#check) args.push("--check");
    args.push(target.entry);
    const started = performance.now();
    const res = await this.#runDeno(args, target, signal);
    this.#log.debug("deno bundle", {
      worker: target.name,
      ms: Math.round(performance.now() - started),
      code: res.code,
    });
    const killed = killedError(
      `deno bundle of "${target.name}"`,
      res,
      { timeoutMs: this.#timeoutMs, timeoutKey: this.#timeoutKey },
    );
    if (killed) return killed;
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
    signal?: AbortSignal,
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
    const res = await this.#runDeno(args, target, signal);
    this.#log.debug("deno compile", {
      worker: target.name,
      ms: Math.round(performance.now() - started),
      code: res.code,
    });
    const killed = killedError(
      `deno compile of "${target.name}"`,
      res,
      { timeoutMs: this.#timeoutMs, timeoutKey: this.#timeoutKey },
    );
    if (killed) return killed;
    if (res.success) return undefined;
    return compileRuntimeError(res.stderr) ?? parseBuildError(res.stderr);
  }

  #flags(): string[] {
    return this.#configPath ? ["--config", this.#configPath] : [];
  }

  #header(project: Project | undefined): string {
    return launcherHeader([...this.#permissions, ...(project?.unstable ?? [])]);
  }
}
