import type { Logger } from "../log/mod.ts";

/**
 * A spawned process; `spawnedAt` (ms since the epoch) when it was started
 * before it was handed over (a dev warm standby), so the startup delay counts
 * from its real start.
 */
export type SpawnedProcess = Deno.ChildProcess & { spawnedAt?: number };

/** Spawns a process; injectable so tests can observe or replace spawning. */
export type SpawnFn = (
  command: string,
  options: Deno.CommandOptions,
) => SpawnedProcess;

/** Options for {@linkcode Instance}. */
export interface InstanceOptions {
  /** Worker name, used as the log prefix. */
  name: string;
  /** Executable to run. */
  command: string;
  /** Working directory. */
  cwd: string;
  /** Full environment of the process. */
  env: Record<string, string>;
  /** Port the instance listens on. */
  port: number;
  /** Where the instance's stdout/stderr lines go. */
  logger: Logger;
  /** Process spawner. Default: `new Deno.Command(command, options).spawn()`. */
  spawn?: SpawnFn;
  /** fetch used by the health probe. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** Options for {@linkcode Instance.waitHealthy}. */
export interface HealthOptions {
  /** Health path. */
  path: string;
  /** Wait before the first probe. */
  delayMs: number;
  /** Give up after this long. */
  timeoutMs: number;
  /** Longest time between probes; they start 1 ms apart and double up to it. Default 20. */
  intervalMs?: number;
}

function defaultSpawn(
  command: string,
  options: Deno.CommandOptions,
): Deno.ChildProcess {
  return new Deno.Command(command, options).spawn();
}

async function pipeLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
) {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const text = rest + chunk;
    const lines = text.split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) onLine(line.replace(/\r$/, ""));
  }
  if (rest) onLine(rest);
}

/** Sends a signal to a whole process group, ignoring a group that is already gone. */
export function killGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      try {
        Deno.kill(pid, signal);
      } catch {
        // The process exited between the two calls: nothing left to signal.
      }
    }
  }
}

let nextId = 1;

/** Longest wait for a stopped worker's last output lines. */
const OUTPUT_DRAIN_MS = 1000;

/**
 * One OS process of a worker: spawned in its own process group with stdin a
 * pipe that is never written, health-probed, and stopped with SIGTERM then
 * SIGKILL of the group.
 */
export class Instance {
  /** Unique id within this server process. */
  readonly id: number = nextId++;
  /** Port the instance listens on. */
  readonly port: number;
  /** Process id (also its process group id). */
  readonly pid: number;
  /** When the process was spawned. */
  readonly startedAt: Date = new Date();
  /** Resolves with the exit status once the process has exited. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** Requests currently being proxied to this instance. */
  inFlight = 0;
  /** Requests proxied to this instance in total. */
  requests = 0;
  /** Health probes failed in a row since the instance went live. */
  failedProbes = 0;
  /** Signal named by the `X-TQ-Reload` header of the last healthy probe, if any. */
  reloadSignal: Deno.Signal | undefined;
  /** When the process was started (ms since the epoch); may predate this object. */
  readonly spawnedAt: number;
  #child: Deno.ChildProcess;
  #exitStatus: Deno.CommandStatus | undefined;
  #fetch: typeof fetch;
  #idle: (() => void) | undefined;
  #output: Promise<unknown>;

  /**
   * Spawns the process.
   *
   * @throws {Deno.errors.NotFound | Deno.errors.PermissionDenied | Error} When the executable cannot be started.
   */
  constructor(options: InstanceOptions) {
    const {
      name,
      command,
      cwd,
      env,
      port,
      logger,
      spawn = defaultSpawn,
      fetch: fetchFn = fetch,
    } = options;
    this.port = port;
    this.#fetch = fetchFn;
    this.#child = spawn(command, {
      cwd,
      env,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // setsid(): the worker leads its own process group, so stopping it stops its children too.
      detached: true,
    });
    this.pid = this.#child.pid;
    this.spawnedAt = (this.#child as SpawnedProcess).spawnedAt ?? Date.now();
    this.exited = this.#child.status.then((status) => {
      this.#exitStatus = status;
      return status;
    });
    const prefix = name;
    this.#output = Promise.all([
      pipeLines(this.#child.stdout, (line) => logger.line(prefix, line)),
      pipeLines(this.#child.stderr, (line) => logger.line(prefix, line)),
    ]).catch((err) =>
      logger.debug("worker output closed", { worker: name, error: err })
    );
  }

  /** The exit status, once the process has exited. */
  get exitStatus(): Deno.CommandStatus | undefined {
    return this.#exitStatus;
  }

  /** Base URL of the instance. */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Probes `GET {path}` until it answers 2xx, the process exits, the timeout
   * passes or `signal` aborts.
   *
   * @throws {Error} With a message saying why the instance is not healthy.
   */
  async waitHealthy(
    options: HealthOptions,
    signal?: AbortSignal,
  ): Promise<void> {
    const { path, delayMs, timeoutMs, intervalMs = 20 } = options;
    const deadline = Date.now() + timeoutMs;
    let lastProblem = "no answer";
    // The delay counts from the process start, which a standby had long ago.
    const delay = Math.min(delayMs - (Date.now() - this.spawnedAt), timeoutMs);
    if (delay > 0) await this.#sleepUnlessExit(delay);
    // Probe soon and then less often: a warm process answers within a few ms.
    let pause = 1;
    while (true) {
      signal?.throwIfAborted();
      const status = this.#exitStatus;
      if (status) {
        throw new Error(
          `Exited during startup with ${
            status.signal ? `signal ${status.signal}` : `code ${status.code}`
          }`,
        );
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(
          `Not healthy after ${timeoutMs} ms (last probe: ${lastProblem})`,
        );
      }
      try {
        const res = await this.#fetch(this.origin + path, {
          signal: AbortSignal.timeout(Math.max(50, Math.min(remaining, 2000))),
        });
        await res.body?.cancel();
        if (res.ok) {
          const reload = res.headers.get("x-tq-reload");
          this.reloadSignal = reload
            ? (reload.toUpperCase() as Deno.Signal)
            : undefined;
          return;
        }
        lastProblem = `status ${res.status}`;
      } catch (err) {
        lastProblem = err instanceof Error
          ? err.message.split("\n")[0] ?? err.name
          : String(err);
      }
      await this.#sleepUnlessExit(Math.min(pause, intervalMs));
      pause *= 2;
    }
  }

  /** One health probe of a running instance: true on a 2xx answer within `timeoutMs`. */
  async probe(path: string, timeoutMs: number): Promise<boolean> {
    if (this.#exitStatus) return false;
    try {
      const res = await this.#fetch(this.origin + path, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  async #sleepUnlessExit(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
      this.exited,
    ]);
    clearTimeout(timer);
  }

  /** Counts a request in flight; returns its release function (idempotent). */
  begin(): () => void {
    this.inFlight++;
    this.requests++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlight--;
      if (this.inFlight === 0) this.#idle?.();
    };
  }

  /** Resolves when no request is in flight, or after `timeoutMs`. Returns true when idle. */
  async waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = await Promise.race([
      new Promise<boolean>((resolve) => this.#idle = () => resolve(true)),
      new Promise<boolean>((resolve) =>
        timer = setTimeout(() => resolve(false), timeoutMs)
      ),
      this.exited.then(() => true),
    ]);
    clearTimeout(timer);
    this.#idle = undefined;
    return idle;
  }

  /** Sends a signal to the instance's process (not its group). */
  signal(signal: Deno.Signal): void {
    if (this.#exitStatus) return;
    Deno.kill(this.pid, signal);
  }

  /**
   * Stops the process group: SIGTERM, then SIGKILL once `graceMs` has passed
   * without an exit. Resolves with the exit status.
   */
  async stop(graceMs: number): Promise<Deno.CommandStatus> {
    if (!this.#exitStatus) {
      killGroup(this.pid, "SIGTERM");
      const exited = await Promise.race([
        this.exited.then(() => true),
        new Promise<false>((resolve) => {
          const signal = AbortSignal.timeout(graceMs);
          signal.addEventListener("abort", () => resolve(false), {
            once: true,
          });
        }),
      ]);
      if (!exited) killGroup(this.pid, "SIGKILL");
    }
    const status = await this.exited;
    // Children the worker left behind in its group die with it.
    killGroup(this.pid, "SIGKILL");
    // A grandchild that left the group may still hold the pipes: do not wait on it.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#output,
      new Promise((resolve) => timer = setTimeout(resolve, OUTPUT_DRAIN_MS)),
    ]);
    clearTimeout(timer);
    try {
      this.#child.stdin.close();
    } catch {
      // Already closed by the process exit.
    }
    return status;
  }
}
