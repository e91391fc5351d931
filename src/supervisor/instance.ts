import type { Logger } from "../log/mod.ts";
import { GROUP_GONE_MS, PROBE_TIMEOUT_CAP_MS } from "../config/defaults.ts";
import { groupAlive, killGroup, killGroupAndWait } from "./_process_group.ts";
import { type Clock, systemClock, wait } from "./clock.ts";
import {
  IllegalTransitionError,
  INSTANCE_TRANSITIONS,
  type InstanceState,
} from "./instance_state.ts";
import { OutputTail } from "./_output.ts";
import { probeProblem, startFailure } from "./_probe.ts";

export { groupAlive, killGroup, killGroupAndWait };
export {
  IllegalTransitionError,
  INSTANCE_TRANSITIONS,
  type InstanceState,
} from "./instance_state.ts";

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
  /**
   * Time and timers of the health wait, the drain and the stop's grace
   * period. Default: the system clock.
   */
  clock?: Clock;
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

let nextId = 1;

/** For this long after the first probe, probes are at most {@linkcode EAGER_PROBE_GAP_MS} apart. */
const EAGER_PROBE_MS = 200;
const EAGER_PROBE_GAP_MS = 4;

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
  readonly startedAt: Date;
  /** Resolves with the exit status once the process has exited. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** Requests currently being proxied to this instance. */
  inFlight = 0;
  /** Requests proxied to this instance in total. */
  requests = 0;
  /** Set once a replace of this instance alone was asked for (it reached `max_requests`). */
  recycling = false;
  /** Health probes failed in a row since the instance went live. */
  failedProbes = 0;
  /** Signal named by the `X-TQ-Reload` header of the last healthy probe, if any. */
  reloadSignal: Deno.Signal | undefined;
  /** When the process was started (ms since the epoch); may predate this object. */
  readonly spawnedAt: number;
  #child: Deno.ChildProcess;
  #exitStatus: Deno.CommandStatus | undefined;
  #state: InstanceState = "starting";
  #stopped: Promise<Deno.CommandStatus> | undefined;
  #healthUrl = "";
  #log: Logger;
  #name: string;
  #fetch: typeof fetch;
  #idle: (() => void) | undefined;
  #output: OutputTail;
  #clock: Clock;

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
      clock = systemClock,
    } = options;
    this.#clock = clock;
    this.startedAt = new Date(clock.now());
    this.port = port;
    this.#fetch = fetchFn;
    this.#log = logger;
    this.#name = name;
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
    this.spawnedAt = (this.#child as SpawnedProcess).spawnedAt ?? clock.now();
    this.exited = this.#child.status.then((status) => {
      this.#exitStatus = status;
      return status;
    });
    this.#output = new OutputTail(this.#child, { name, logger });
  }

  /** Where the instance is in its life. */
  get state(): InstanceState {
    return this.#state;
  }

  /** The last lines the instance printed (stdout and stderr), oldest first. */
  recentOutput(): string[] {
    return this.#output.lines();
  }

  /** Moves to `next`; a move the table does not allow throws. */
  #to(next: InstanceState): void {
    if (this.#state === next) return;
    if (!INSTANCE_TRANSITIONS[this.#state].includes(next)) {
      throw new IllegalTransitionError(
        `instance ${this.pid}`,
        this.#state,
        next,
      );
    }
    this.#state = next;
  }

  /** Marks a ready instance as draining: it gets no new requests. */
  drain(): void {
    if (this.#state === "ready") this.#to("draining");
  }

  /** What a failed start says: `problem`, then the URL probed, the port given, what the instance printed. */
  #startFailure(problem: string): Error {
    return startFailure(problem, {
      url: this.#healthUrl,
      port: this.port,
      lines: this.#output.lines(),
    });
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
    const clock = this.#clock;
    const deadline = clock.now() + timeoutMs;
    this.#healthUrl = this.origin + path;
    let lastProblem = "no answer";
    // The delay counts from the process start, which a standby had long ago.
    const delay = Math.min(delayMs - (clock.now() - this.spawnedAt), timeoutMs);
    if (delay > 0) await this.#sleepUnlessExit(delay);
    // Probe soon and often at first (a warm process answers within a few
    // ms), then every intervalMs: a refused connection costs next to nothing.
    let pause = 1;
    const probing = clock.now();
    while (true) {
      signal?.throwIfAborted();
      const status = this.#exitStatus;
      if (status) {
        // Its last words may still be in the pipe.
        await this.#outputSettled(200);
        throw this.#startFailure(
          `Exited during startup with ${
            status.signal ? `signal ${status.signal}` : `code ${status.code}`
          }`,
        );
      }
      const remaining = deadline - clock.now();
      if (remaining <= 0) {
        throw this.#startFailure(
          `Not healthy after ${timeoutMs} ms (last probe: ${lastProblem})`,
        );
      }
      try {
        const res = await this.#fetch(this.origin + path, {
          signal: AbortSignal.timeout(
            Math.max(50, Math.min(remaining, PROBE_TIMEOUT_CAP_MS)),
          ),
        });
        await res.body?.cancel();
        if (res.ok) {
          const reload = res.headers.get("x-tq-reload");
          this.reloadSignal = reload
            ? (reload.toUpperCase() as Deno.Signal)
            : undefined;
          if (this.#state === "starting") this.#to("ready");
          return;
        }
        lastProblem = `status ${res.status}`;
      } catch (err) {
        lastProblem = probeProblem(err);
      }
      const early = clock.now() - probing < EAGER_PROBE_MS;
      await this.#sleepUnlessExit(
        Math.min(pause, early ? EAGER_PROBE_GAP_MS : intervalMs),
      );
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
    const timer = wait(this.#clock, ms);
    await Promise.race([timer.fired, this.exited]);
    timer.cancel();
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
    const timer = wait(this.#clock, timeoutMs);
    const idle = await Promise.race([
      new Promise<boolean>((resolve) => this.#idle = () => resolve(true)),
      timer.fired.then(() => false),
      this.exited.then(() => true),
    ]);
    timer.cancel();
    this.#idle = undefined;
    return idle;
  }

  /** Sends a signal to the instance's process (not its group). */
  signal(signal: Deno.Signal): void {
    if (this.#exitStatus) return;
    Deno.kill(this.pid, signal);
  }

  /**
   * Ends the instance: SIGTERM to its process group, SIGKILL once `graceMs`
   * has passed without an exit, and at once to whatever the group still holds
   * after the leader exited (a crash's leftovers); then closes its stdin.
   * Resolves with the leader's exit status once no process of the group runs,
   * so its port is free. Idempotent: every call gets the same stop.
   */
  stop(graceMs: number): Promise<Deno.CommandStatus> {
    this.#stopped ??= this.#stop(graceMs);
    return this.#stopped;
  }

  async #stop(graceMs: number): Promise<Deno.CommandStatus> {
    if (!this.#exitStatus) {
      this.#to("stopping");
      killGroup(this.pid, "SIGTERM");
      const timer = wait(this.#clock, graceMs);
      const exited = await Promise.race([
        this.exited.then(() => true),
        timer.fired.then(() => false),
      ]);
      timer.cancel();
      if (!exited) killGroup(this.pid, "SIGKILL");
    }
    const status = await this.exited;
    // Children the worker left behind in its group die with it.
    if (!(await killGroupAndWait(this.pid, GROUP_GONE_MS))) {
      // Unkillable (stuck in the kernel): its port may stay taken; the pool skips a busy port.
      this.#log.warn("worker process group outlived SIGKILL", {
        worker: this.#name,
        pgid: this.pid,
        port: this.port,
        waited_ms: GROUP_GONE_MS,
      });
    }
    try {
      this.#child.stdin.close();
    } catch {
      // Already closed.
    }
    // A grandchild that left the group may still hold the pipes: do not wait on it.
    await this.#outputSettled(OUTPUT_DRAIN_MS);
    this.#to("exited");
    return status;
  }

  async #outputSettled(ms: number): Promise<void> {
    const timer = wait(this.#clock, ms);
    await Promise.race([this.#output.settled, timer.fired]);
    timer.cancel();
  }
}
