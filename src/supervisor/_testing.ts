// Folder-private test helpers.
import { join } from "node:path";
import { defaultConfig, type WorkerSpec } from "../config/mod.ts";
import { RouteTable } from "../routes/mod.ts";
import type { Clock } from "./clock.ts";
import { Supervisor, type SupervisorOptions } from "./supervisor.ts";

const ECHO =
  new URL("../../tests/testdata/echo_worker.ts", import.meta.url).pathname;

/** Writes the shell script `dir/bin/{name}` (`body` after the shebang) by a rename, as a build would. */
export function writeScript(dir: string, name: string, body: string): string {
  const bin = join(dir, "bin", name);
  Deno.mkdirSync(join(dir, "bin"), { recursive: true });
  Deno.writeTextFileSync(bin + ".tmp", `#!/bin/sh\n${body}`, { mode: 0o755 });
  Deno.chmodSync(bin + ".tmp", 0o755);
  Deno.renameSync(bin + ".tmp", bin);
  return bin;
}

/** Writes bin/index: the echo worker tagged `tag`, after `before` (shell lines). */
export function writeEcho(dir: string, tag: string, before = ""): string {
  return writeScript(
    dir,
    "index",
    `export TAG='${tag}'\n${before}exec '${Deno.execPath()}' run -A --no-config '${ECHO}'\n`,
  );
}

/** Polls `fn` every 10 ms; false when `timeoutMs` passed first. */
export async function until(
  fn: () => boolean,
  timeoutMs = 5000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** Options of {@linkcode setupSupervisor}. */
export interface SetupOptions {
  /** The temp dir's prefix. Default `"tq-sup-"`. */
  prefix?: string;
  /** The worker's route. Default `"/"`. */
  route?: string;
  /** The worker's `instances`. Default 1. */
  instances?: number;
  /** Passed to the supervisor, over `healthIntervalMs: 0` (no periodic health checks). */
  supervisor?: Partial<SupervisorOptions>;
}

/**
 * A prod supervisor with short delays on a random port range, not started,
 * and the spec of the echo worker `index` (tagged v1) in a temp dir;
 * `cleanup()` shuts the supervisor down and removes the dir.
 */
export function setupSupervisor(options: SetupOptions = {}) {
  const {
    prefix = "tq-sup-",
    route = "/",
    instances = 1,
    supervisor: supervisorOptions = {},
  } = options;
  const root = Deno.makeTempDirSync({ prefix });
  const dir = join(root, "workers", "index");
  const binPath = writeEcho(dir, "v1");
  const config = defaultConfig();
  const start = 20000 + Math.floor(Math.random() * 12000);
  config.workers.port_range_start = start;
  config.workers.port_range_end = start + 50;
  config.workers.startup_delay_ms = 10;
  config.workers.restart_delay_ms = 10;
  config.workers.shutdown_grace_period_ms = 2000;
  const settings = {
    ...config.workers.default,
    startup_timeout_ms: 5000,
    instances,
  };
  const spec: WorkerSpec = {
    name: "index",
    dir,
    route,
    kind: "binary",
    entry: undefined,
    binPath,
    settings,
  };
  const table = new RouteTable();
  const supervisor = new Supervisor(config, {
    mode: "prod",
    table,
    strict: true,
    healthIntervalMs: 0,
    ...supervisorOptions,
  });
  const cleanup = async () => {
    await supervisor.shutdown();
    Deno.removeSync(root, { recursive: true });
  };
  return { root, dir, spec, table, supervisor, config, cleanup };
}

/** A clock whose timers fire only when the test says so. */
export class FakeClock implements Clock {
  time = 1_000_000;
  timers = new Map<number, { fn: () => void; at: number; ms: number }>();
  delays: number[] = [];
  #id = 0;
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): number {
    this.delays.push(ms);
    this.timers.set(++this.#id, { fn, at: this.time + ms, ms });
    return this.#id;
  }
  clearTimeout(id: number | undefined): void {
    if (id !== undefined) this.timers.delete(id);
  }
  /** Jumps to the next timer and runs it. */
  fireNext(): void {
    const [id, timer] = [...this.timers].sort((a, b) => a[1].at - b[1].at)[0]!;
    this.timers.delete(id);
    this.time = timer.at;
    timer.fn();
  }
}
