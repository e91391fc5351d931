import {
  type Config,
  DEFAULT_SHUTDOWN_GRACE_MS,
  GROUP_GONE_MS,
  SUCCESSOR_MIN_TIMEOUT_MS,
} from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import { runsFromSource } from "../runtime.ts";
import { killGroup, killGroupAndWait } from "../supervisor/mod.ts";

/** Env var naming the pid of the server that started this one as its successor. */
export const UPGRADE_PARENT_ENV = "TQ_UPGRADE_PARENT";

/**
 * Env var telling a successor that a terminal's job waits on it: it stays in
 * the foreground for its own successor in turn, so Ctrl+C reaches the newest
 * server after any number of upgrades.
 */
export const FOREGROUND_ENV = "TQ_FOREGROUND";

/** True when this server should stay in the foreground for a successor: stdin is a terminal, or its predecessor did so. */
export function keepsForeground(): boolean {
  if (Deno.env.get(FOREGROUND_ENV) === "1") return true;
  try {
    return Deno.stdin.isTerminal();
  } catch {
    return false;
  }
}

/** How long an upgrading server keeps answering (with `Connection: close`) after its successor serves. */
export const HANDOVER_MS = 500;

/** Longest wait for a successor to serve: it starts every worker first. */
export function successorTimeoutMs(config: Config): number {
  return Math.max(
    SUCCESSOR_MIN_TIMEOUT_MS,
    config.workers.default.startup_timeout_ms * 3,
  );
}

/** Options for {@linkcode startSuccessor}. */
export interface SuccessorOptions {
  /** Logger. */
  logger: Logger;
  /** Longest wait for the successor to report ready. */
  timeoutMs: number;
  /** Arguments of this server, passed on unchanged. Default `Deno.args`. */
  args?: string[];
  /** A successor that failed gets this long after SIGTERM before its group is SIGKILLed. Default 5000. */
  graceMs?: number;
  /** Keep a reference to the successor (this process waits for it as the terminal's job). Default false. */
  foreground?: boolean;
  /** What to run. Default: {@linkcode selfCommand} of `args` (tests run something else). */
  command?: { command: string; args: string[] };
  /** Gives up (and kills the successor's group) when it aborts: this server is stopping. */
  signal?: AbortSignal;
}

/**
 * V8 flags a source-mode successor runs with: the same as `deno task start`
 * (deno.json), so a self-upgrade does not lose the semi-space cap.
 */
export const SOURCE_V8_FLAGS = "--v8-flags=--max-semi-space-size=4";

/** The command that runs this server again: the compiled binary, or `deno run` on the main module. */
export function selfCommand(
  args: string[],
): { command: string; args: string[] } {
  const exec = Deno.execPath();
  if (!runsFromSource()) return { command: exec, args };
  return {
    command: exec,
    args: [
      "run",
      "--allow-all",
      "--unstable-net",
      SOURCE_V8_FLAGS,
      Deno.mainModule,
      ...args,
    ],
  };
}

/**
 * Starts a successor server with the same arguments and waits until it says
 * it serves (SIGUSR2 to this process) — tableflip's handover, with a signal as
 * the ready pipe. The successor binds the same port through `reusePort`.
 *
 * @returns The successor once it serves; undefined (its whole process group killed) when it failed.
 */
export async function startSuccessor(
  options: SuccessorOptions,
): Promise<Deno.ChildProcess | undefined> {
  const {
    logger,
    timeoutMs,
    args = Deno.args,
    graceMs = DEFAULT_SHUTDOWN_GRACE_MS,
    foreground = false,
  } = options;
  const { command, args: argv } = options.command ?? selfCommand(args);
  let onReady = () => {};
  const ready = new Promise<"ready">((resolve) =>
    onReady = () => resolve("ready")
  );
  Deno.addSignalListener("SIGUSR2", onReady);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args: argv,
      env: {
        [UPGRADE_PARENT_ENV]: String(Deno.pid),
        ...(foreground ? { [FOREGROUND_ENV]: "1" } : {}),
      },
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
      // Its own session: the successor outlives this process.
      detached: true,
    }).spawn();
  } catch (err) {
    Deno.removeSignalListener("SIGUSR2", onReady);
    logger.error("server upgrade failed", { error: err });
    return undefined;
  }
  logger.info("server upgrade started", { successor_pid: child.pid });
  const timeout = AbortSignal.timeout(timeoutMs);
  const outcome = await Promise.race([
    ready,
    child.status.then((s) => `exited with code ${s.code}`),
    new Promise<string>((resolve) =>
      timeout.addEventListener(
        "abort",
        () => resolve(`not ready after ${timeoutMs} ms`),
        { once: true },
      )
    ),
    new Promise<string>((resolve) => {
      const { signal } = options;
      if (signal?.aborted) resolve("cancelled: this server is stopping");
      signal?.addEventListener(
        "abort",
        () => resolve("cancelled: this server is stopping"),
        { once: true },
      );
    }),
  ]);
  Deno.removeSignalListener("SIGUSR2", onReady);
  if (outcome === "ready") {
    if (!foreground) child.unref();
    logger.info("server upgrade ready, handing over", {
      successor_pid: child.pid,
    });
    return child;
  }
  logger.error("server upgrade failed, this server keeps serving", {
    error: outcome,
    successor_pid: child.pid,
  });
  // It and whatever it started (its workers) go: SIGTERM, SIGKILL of the group after the grace.
  killGroup(child.pid, "SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    child.status,
    new Promise((resolve) => timer = setTimeout(resolve, graceMs)),
  ]);
  clearTimeout(timer);
  if (!(await killGroupAndWait(child.pid, GROUP_GONE_MS))) {
    logger.warn("failed successor's process group is still alive", {
      successor_pid: child.pid,
    });
  }
  await child.status;
  return undefined;
}

/** In a successor: tells the predecessor that this server serves now. */
export function notifyPredecessor(logger: Logger): void {
  const parent = Number(Deno.env.get(UPGRADE_PARENT_ENV));
  Deno.env.delete(UPGRADE_PARENT_ENV);
  if (!parent) return;
  try {
    Deno.kill(parent, "SIGUSR2");
  } catch (err) {
    logger.warn("predecessor is gone", { pid: parent, error: err });
  }
}
