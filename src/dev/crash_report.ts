import type { Logger } from "../log/mod.ts";
import type { SpawnedProcess, SpawnFn, Supervisor } from "../supervisor/mod.ts";
import type { LiveReload } from "./livereload.ts";

/** Options for {@linkcode CrashReporter}. */
export interface CrashReporterOptions {
  /** Where crash events go. */
  live: LiveReload;
  /** The workers, to see when one is healthy again and to set `last_error`. */
  supervisor: Pick<Supervisor, "workers">;
  /** The server's logger (the crash-loop count line). */
  logger: Logger;
  /** Lines of stderr kept for the overlay. Default 30. */
  tailLines?: number;
  /** How long a line that repeats the last crash is held back, at most. Default 1500. */
  holdMs?: number;
}

interface LastCrash {
  /** The crashed process's stderr lines, normalised for comparison. */
  lines: string[];
  /** Crashes in a row with this same output. */
  count: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
/** Signals the supervisor stops instances with. */
const STOP_SIGNALS: ReadonlySet<Deno.Signal> = new Set(["SIGTERM", "SIGKILL"]);
const FRAME = /\bat (?:.*?\()?(file:\/\/[^\s)]+?):(\d+):(\d+)\)?\s*$/;

/** A line with its numbers (times, pids, ports) blanked, so two crashes compare equal. */
function normalise(line: string): string {
  return line.replace(ANSI, "").replace(/\d+/g, "#");
}

/** The first stack frame inside the worker's folder (source-mapped to `src/`), else the first one. */
function locate(
  tail: string[],
  dir: string | undefined,
): { file: string; line: number; column: number } | undefined {
  let first: { file: string; line: number; column: number } | undefined;
  for (const text of tail) {
    const m = FRAME.exec(text);
    if (!m) continue;
    let file = m[1]!;
    try {
      file = decodeURIComponent(new URL(file).pathname);
    } catch {
      // Not a URL after all.
    }
    const at = { file, line: Number(m[2]), column: Number(m[3]) };
    if (dir && file.startsWith(dir + "/") && !file.includes("/bin/")) {
      return at;
    }
    first ??= at;
  }
  return first;
}

/** Lines of a worker's stderr compared with its previous crash; longer output is never "the same crash". */
const MAX_COMPARED_LINES = 500;

/**
 * Shows a worker that dies like a build error (dev): the tail of its stderr —
 * already source-mapped by deno from the bundle's inline map — goes to the
 * browser overlay (`error` event with `kind: "crash"`) and into `last_error`,
 * until an instance of that worker is healthy again. A crash loop prints its
 * trace once: later crashes with the same output are held back from the log
 * and counted in one line each.
 */
export class CrashReporter {
  #live: LiveReload;
  #supervisor: Pick<Supervisor, "workers">;
  #log: Logger;
  #tailLines: number;
  #holdMs: number;
  #last = new Map<string, LastCrash>();
  #watching = new Map<string, ReturnType<typeof setInterval>>();

  constructor(options: CrashReporterOptions) {
    const { live, supervisor, logger, tailLines = 30, holdMs = 1500 } = options;
    this.#live = live;
    this.#supervisor = supervisor;
    this.#log = logger;
    this.#tailLines = tailLines;
    this.#holdMs = holdMs;
  }

  /** Wraps a spawn function: every worker process it starts is watched. */
  wrap(spawn: SpawnFn): SpawnFn {
    return (command, options) => {
      const child = spawn(command, options);
      const name = options.env?.TQ_WORKER_NAME;
      if (!name) return child;
      return this.#watch(
        child,
        name,
        options.cwd?.toString(),
        options.env?.TQ_PORT,
      );
    };
  }

  /** Stops watching for recoveries (server stopping). */
  close(): void {
    for (const timer of this.#watching.values()) clearInterval(timer);
    this.#watching.clear();
  }

  #watch(
    child: SpawnedProcess,
    name: string,
    dir: string | undefined,
    port: string | undefined,
  ): SpawnedProcess {
    const tail: string[] = [];
    // Kept to compare with the next crash, so bounded: a worker that logs
    // to stderr for hours must not keep every line.
    const seen: string[] = [];
    let overflowed = false;
    const previous = this.#last.get(name);
    let held: string[] = [];
    let diverged = !previous;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let out: TransformStreamDefaultController<Uint8Array> | undefined;
    const release = () => {
      clearTimeout(timer);
      if (held.length && out) {
        try {
          out.enqueue(encoder.encode(held.map((l) => l + "\n").join("")));
        } catch {
          // The reader is gone.
        }
      }
      held = [];
      diverged = true;
    };
    let rest = "";
    const onLine = (line: string, controller: typeof out) => {
      tail.push(line.replace(ANSI, ""));
      if (tail.length > this.#tailLines) tail.shift();
      if (seen.length < MAX_COMPARED_LINES) seen.push(normalise(line));
      else overflowed = true;
      if (!diverged && previous) {
        const i = seen.length - 1;
        if (!overflowed && previous.lines[i] === seen[i]) {
          held.push(line);
          clearTimeout(timer);
          timer = setTimeout(release, this.#holdMs);
          return;
        }
        release();
      }
      controller?.enqueue(encoder.encode(line + "\n"));
    };
    const stderr = child.stderr.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        start: (controller) => {
          out = controller;
        },
        transform: (chunk) => {
          const lines = (rest + decoder.decode(chunk, { stream: true }))
            .split("\n");
          rest = lines.pop() ?? "";
          for (const line of lines) onLine(line, out);
        },
        flush: () => {
          if (rest) onLine(rest, out);
          rest = "";
        },
      }),
    );
    child.status.then((status) => {
      // SIGTERM and SIGKILL are how the supervisor stops an instance: not a
      // crash. Another signal (SIGABRT, SIGSEGV) is one, unless it ends an old
      // instance being stopped: that is the supervisor's warning, not an overlay.
      if (
        status.success ||
        (status.signal &&
          (STOP_SIGNALS.has(status.signal) || this.#draining(name, child.pid)))
      ) {
        this.#last.delete(name);
        release();
        return;
      }
      clearTimeout(timer);
      const same = !diverged && !overflowed && previous !== undefined &&
        seen.length === previous.lines.length;
      if (same) {
        previous.count++;
        held = [];
        this.#log.warn("worker crashed again with the same output", {
          worker: name,
          times: previous.count,
        });
      } else {
        release();
        this.#last.set(name, { lines: seen, count: 1 });
      }
      this.#report(name, dir, status, tail, Date.now(), port);
    });
    return wrapChild(child, stderr);
  }

  /** Whether `pid` is an old instance of the worker that is being stopped. */
  #draining(name: string, pid: number): boolean {
    const entry = this.#supervisor.workers.get(name);
    return entry !== undefined &&
      [...entry.draining].some((i) => i.pid === pid);
  }

  #report(
    name: string,
    dir: string | undefined,
    status: Deno.CommandStatus,
    tail: string[],
    crashedAt: number,
    port: string | undefined,
  ): void {
    const how = status.signal
      ? `signal ${status.signal}`
      : `exit code ${status.code}`;
    const text = tail.join("\n").trim() || "(it printed nothing on stderr)";
    const at = locate(tail, dir);
    const headline = tail.find((l) => /error/i.test(l))?.trim() ??
      `Exited with ${how}`;
    this.#live.emit({
      type: "error",
      kind: "crash",
      worker: name,
      message: `The worker exited with ${how}:\n\n${text}${
        portHint(tail, port)
      }${
        status.code === 127
          ? "\n\nExit code 127: a command was not found, often the interpreter its first line (#!) names. Install it, or fix that line."
          : ""
      }`,
      ...(at ?? {}),
    });
    this.#awaitRecovery(
      name,
      crashedAt,
      `Crashed (${how}): ${headline}\n${text}`,
    );
  }

  /** Clears the crash from browsers once the worker has a healthy instance again. */
  #awaitRecovery(name: string, crashedAt: number, error: string): void {
    clearInterval(this.#watching.get(name));
    const check = () => {
      const entry = this.#supervisor.workers.get(name);
      if (entry && !startedSince(entry, crashedAt)) {
        // The supervisor notes its own one-line reason when it gives up on
        // the instance; the trace replaces it (a build error stays).
        if (!entry.lastError || /^Exited /.test(entry.lastError)) {
          entry.noteError(error);
        }
        return;
      }
      clearInterval(timer);
      this.#watching.delete(name);
      this.#live.emit({ type: "ok", kind: "crash", worker: name });
    };
    const timer = setInterval(check, 25);
    this.#watching.set(name, timer);
    queueMicrotask(check);
  }
}

/** Advice when the worker died because its port was taken: it listened on another than TQ_PORT. */
function portHint(tail: string[], port: string | undefined): string {
  if (
    !tail.some((l) => /address already in use|EADDRINUSE|AddrInUse/i.test(l))
  ) {
    return "";
  }
  return `\n\nThe port it tried is taken. A worker listens on 127.0.0.1 at the port in $TQ_PORT${
    port ? ` (${port} for this instance)` : ""
  }, a fresh one from the pool each start; a fixed port collides with the instance it replaces.`;
}

/** Whether an instance of the worker that serves now was started after `time` (the old one may still serve). */
function startedSince(
  entry: { active: readonly { startedAt: Date }[] },
  time: number,
): boolean {
  return entry.active.some((i) => i.startedAt.getTime() > time);
}

/** The same child process with another stderr stream. */
function wrapChild(
  child: SpawnedProcess,
  stderr: ReadableStream<Uint8Array>,
): SpawnedProcess {
  return new Proxy(child, {
    get(target, prop) {
      if (prop === "stderr") return stderr;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
