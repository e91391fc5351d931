import { existsSync } from "node:fs";
import type { BuildTarget } from "../build/mod.ts";
import { type Logger, silentLogger } from "../log/mod.ts";
import { DEFAULT_BUILD_TIMEOUT_MS } from "../config/defaults.ts";
import type { LiveReload } from "./livereload.ts";

/** The first type error of a `deno check` run. */
export interface TypeProblem {
  /** `TS2322 Type 'string' is not assignable…` plus the code frame deno printed. */
  message: string;
  /** How many errors deno found in all. */
  count: number;
  file?: string;
  line?: number;
  column?: number;
}

/** Options for {@linkcode TypeChecker}. */
export interface TypeCheckerOptions {
  /** Where warnings go. */
  live: LiveReload;
  /** Log lines. Default: silent. */
  logger?: Logger;
  /** Sets the worker's `last_error`. */
  noteError?: (worker: string, error: string) => void;
  /** deno executable. Default `Deno.execPath()`. */
  denoPath?: string;
  /** The project's deno.json, when there is one. */
  configPath?: string | undefined;
  /** A check is killed after this long. Default 120000. */
  timeoutMs?: number;
  /** Quiet time after the last request before a check starts. Default 1000. */
  delayMs?: number;
  /** False while a rebuild is under way: checks then wait. Default: always idle. */
  idle?: () => boolean;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
const HEAD = /^(TS\d+) \[ERROR\]: (.*)$/;
const AT = /^\s*at (file:\/\/\S+?):(\d+):(\d+)\s*$/;

/** Reads the first error (with its code frame) and the count out of `deno check` output. */
export function parseTypeErrors(output: string): TypeProblem | undefined {
  const lines = output.replace(ANSI, "").split("\n");
  const start = lines.findIndex((l) => HEAD.test(l));
  if (start < 0) return undefined;
  const head = HEAD.exec(lines[start]!)!;
  const frame: string[] = [];
  let at: RegExpExecArray | null = null;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!;
    at = AT.exec(line);
    if (at || HEAD.test(line) || line.trim() === "") break;
    frame.push(line);
  }
  const found = /Found (\d+) errors?/.exec(output);
  const count = found ? Number(found[1]) : 1;
  const problem: TypeProblem = {
    message: `${head[1]}: ${head[2]}${
      frame.length ? `\n\n${frame.join("\n")}` : ""
    }${
      count > 1
        ? `\n\n(${count - 1} more type error${count > 2 ? "s" : ""})`
        : ""
    }`,
    count,
  };
  if (at) {
    let file = at[1]!;
    try {
      file = decodeURIComponent(new URL(file).pathname);
    } catch {
      // Keep the text.
    }
    problem.file = file;
    problem.line = Number(at[2]);
    problem.column = Number(at[3]);
  }
  return problem;
}

const NICE = ["/usr/bin/nice", "/bin/nice"].find((p) => existsSync(p));

/**
 * Type checks in dev without holding up a reload (as Vite's checker does):
 * after a worker's new build serves and files have been quiet for a moment,
 * `deno check` runs on its entry in the background at low priority (and is
 * stopped, to run again later, when files change meanwhile); type errors become a `warning` event (overlay
 * corner, never blocking), a log line and `last_error`; a clean check clears
 * the warning. Checks of one worker never overlap: edits made meanwhile
 * coalesce into one more check.
 */
export class TypeChecker {
  #live: LiveReload;
  #log: Logger;
  #noteError: (worker: string, error: string) => void;
  #deno: string;
  #configPath: string | undefined;
  #timeoutMs: number;
  #running = new Map<
    string,
    { target: BuildTarget; child?: Deno.ChildProcess; done?: Promise<void> }
  >();
  #pending = new Map<string, BuildTarget>();
  #timers = new Map<string, ReturnType<typeof setTimeout>>();
  #delayMs: number;
  #idle: () => boolean;
  #closed = false;
  #children = new Set<Deno.ChildProcess>();

  constructor(options: TypeCheckerOptions) {
    const {
      live,
      logger = silentLogger,
      noteError = () => {},
      denoPath = Deno.execPath(),
      configPath,
      timeoutMs = DEFAULT_BUILD_TIMEOUT_MS,
      delayMs = 1000,
      idle = () => true,
    } = options;
    this.#delayMs = delayMs;
    this.#idle = idle;
    this.#live = live;
    this.#log = logger;
    this.#noteError = noteError;
    this.#deno = denoPath;
    this.#configPath = configPath;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Queues a check of `target`: it runs once files have been quiet for
   * `delayMs` and no reload is under way. Checks of one worker never overlap.
   */
  check(target: BuildTarget): void {
    if (this.#closed) return;
    this.#pending.set(target.name, target);
    this.#arm(target.name);
  }

  /**
   * Files are changing: running checks are stopped (a check would compete
   * with the rebuild for the CPU) and run again once things are quiet.
   */
  interrupt(): void {
    for (const [name, run] of this.#running) {
      if (!this.#pending.has(name)) this.#pending.set(name, run.target);
      this.#arm(name);
      try {
        run.child?.kill("SIGKILL");
      } catch {
        // Finished meanwhile.
      }
    }
    for (const name of this.#timers.keys()) this.#arm(name);
  }

  #arm(name: string): void {
    clearTimeout(this.#timers.get(name));
    this.#timers.set(name, setTimeout(() => this.#fire(name), this.#delayMs));
  }

  #fire(name: string): void {
    this.#timers.delete(name);
    const target = this.#pending.get(name);
    if (!target || this.#closed) return;
    if (!this.#idle() || this.#running.has(name)) {
      this.#arm(name);
      return;
    }
    this.#pending.delete(name);
    const run: {
      target: BuildTarget;
      child?: Deno.ChildProcess;
      done?: Promise<void>;
    } = { target };
    this.#running.set(name, run);
    run.done = this.#run(target, (child) => run.child = child)
      .catch((err) =>
        this.#log.debug("type check failed", { worker: name, error: err })
      )
      .finally(() => this.#running.delete(name));
  }

  /** Kills running checks. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#pending.clear();
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    // Each run ends once its killed child is reaped.
    await Promise.all([...this.#running.values()].map((r) => r.done));
  }

  async #run(
    target: BuildTarget,
    onSpawn: (child: Deno.ChildProcess) => void,
  ): Promise<void> {
    const started = performance.now();
    const args = [
      "check",
      "--quiet",
      ...(this.#configPath ? ["--config", this.#configPath] : []),
      target.entry,
    ];
    let output: Deno.CommandOutput;
    let timedOut = false;
    try {
      const child = new Deno.Command(NICE ?? this.#deno, {
        args: NICE ? ["-n", "10", this.#deno, ...args] : args,
        cwd: target.dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      }).spawn();
      this.#children.add(child);
      onSpawn(child);
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          child.kill("SIGKILL");
        } catch {
          // Done meanwhile.
        }
      }, this.#timeoutMs);
      try {
        output = await child.output();
      } finally {
        clearTimeout(timer);
        this.#children.delete(child);
      }
    } catch (err) {
      this.#log.debug("type check could not run", {
        worker: target.name,
        error: err,
      });
      return;
    }
    if (this.#closed) return;
    const ms = Math.round(performance.now() - started);
    if (timedOut) {
      this.#log.warn("type check timed out", {
        worker: target.name,
        cmd: `deno ${args.join(" ")}`,
        ms,
        key: "deployment.dev.build.timeout_ms",
      });
      return;
    }
    // Killed by interrupt(): it runs again once files are quiet.
    if (output.signal) return;
    const decoder = new TextDecoder();
    const text = decoder.decode(output.stderr) + decoder.decode(output.stdout);
    const problem = output.success ? undefined : parseTypeErrors(text);
    if (!problem && !output.success) {
      // Not a type error (a module deno cannot resolve…): the build reports
      // that; the earlier verdict stays.
      this.#log.debug("type check failed without a type error", {
        worker: target.name,
        code: output.code,
        output: text.trim().split("\n")[0] ?? "",
      });
      return;
    }
    if (!problem) {
      this.#log.debug("type check passed", { worker: target.name, ms });
      this.#live.emit({ type: "ok", kind: "types", worker: target.name });
      return;
    }
    const where = problem.file
      ? ` at ${problem.file}:${problem.line}:${problem.column}`
      : "";
    const first = problem.message.split("\n")[0];
    this.#log.warn("type errors (the new build serves anyway)", {
      worker: target.name,
      errors: problem.count,
      file: problem.file,
      line: problem.line,
      error: first,
      ms,
    });
    this.#noteError(target.name, `Type errors${where}: ${first}`);
    this.#live.emit({
      type: "warning",
      kind: "types",
      worker: target.name,
      message: problem.message,
      ...(problem.file ? { file: problem.file } : {}),
      ...(problem.line ? { line: problem.line } : {}),
      ...(problem.column ? { column: problem.column } : {}),
    });
  }
}
