import { existsSync } from "node:fs";
import type { BuildTarget } from "../build/mod.ts";
import { type Logger, silentLogger } from "../log/mod.ts";
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
 * after a worker's new build serves, `deno check` runs on its entry in the
 * background at low priority; type errors become a `warning` event (overlay
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
  #running = new Map<string, Promise<void>>();
  #again = new Map<string, BuildTarget>();
  #closed = false;
  #children = new Set<Deno.ChildProcess>();

  constructor(options: TypeCheckerOptions) {
    const {
      live,
      logger = silentLogger,
      noteError = () => {},
      denoPath = Deno.execPath(),
      configPath,
      timeoutMs = 120_000,
    } = options;
    this.#live = live;
    this.#log = logger;
    this.#noteError = noteError;
    this.#deno = denoPath;
    this.#configPath = configPath;
    this.#timeoutMs = timeoutMs;
  }

  /** Queues a check of `target`; resolves when that worker has no check running or queued. */
  check(target: BuildTarget): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const running = this.#running.get(target.name);
    if (running) {
      this.#again.set(target.name, target);
      return running;
    }
    const done = (async () => {
      let next: BuildTarget | undefined = target;
      while (next && !this.#closed) {
        this.#again.delete(next.name);
        await this.#run(next);
        next = this.#again.get(target.name);
      }
    })().finally(() => this.#running.delete(target.name));
    this.#running.set(target.name, done);
    return done;
  }

  /** Kills running checks. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await Promise.allSettled([...this.#running.values()]);
  }

  async #run(target: BuildTarget): Promise<void> {
    const started = performance.now();
    const args = [
      "check",
      "--quiet",
      ...(this.#configPath ? ["--config", this.#configPath] : []),
      target.entry,
    ];
    let output: Deno.CommandOutput;
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
      const timer = setTimeout(() => {
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
    if (this.#closed || output.signal) return;
    const ms = Math.round(performance.now() - started);
    const decoder = new TextDecoder();
    const text = decoder.decode(output.stderr) + decoder.decode(output.stdout);
    const problem = output.success ? undefined : parseTypeErrors(text);
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
