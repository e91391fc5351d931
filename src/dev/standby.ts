import { fileURLToPath, pathToFileURL } from "node:url";
import type { LaunchInfo } from "../build/mod.ts";
import { type Logger, silentLogger } from "../log/mod.ts";
import { runsFromSource } from "../runtime.ts";
import { killGroup, type SpawnedProcess } from "../supervisor/mod.ts";

/** Options for {@linkcode StandbyPool}. */
export interface StandbyPoolOptions {
  /** How the bundle at a path is run, when the dev builder wrote it; undefined = not a dev bundle. */
  launchInfo(binPath: string): LaunchInfo | undefined;
  /** Logger. Default: silent. */
  logger?: Logger;
  /** Wait after a spawn before starting the next standby, so it does not compete with the start. Default 150. */
  delayMs?: number;
  /** deno executable. Default `Deno.execPath()`. */
  denoPath?: string;
  /** False while files are changing: a standby then waits, so its start does not slow the next build. Default: always idle. */
  idle?: () => boolean;
  /** False for a binary no worker runs any more (a removed worker): its standby is stopped at the next spawn. Default: always wanted. */
  wanted?: (binPath: string) => boolean;
}

interface Standby {
  child: Deno.ChildProcess;
  spawnedAt: number;
  key: string;
  exited: boolean;
}

const SCRIPT = fileURLToPath(new URL("./standby_main.ts", import.meta.url));
const encoder = new TextEncoder();

function plainSpawn(
  command: string,
  options: Deno.CommandOptions,
): Deno.ChildProcess {
  return new Deno.Command(command, options).spawn();
}

/** The environment a standby can be started with: everything but the port, known only at hand-over. */
function stableEnv(env: Record<string, string> | undefined) {
  const rest = { ...env };
  delete rest.TQ_PORT;
  delete rest.PORT;
  return rest;
}

/** Whether a standby may import the bundle: dynamic imports of local files need read permission. */
function canImport(args: string[]): boolean {
  return args.some((a) =>
    a === "--allow-all" || a === "-A" || a === "--allow-read"
  );
}

/**
 * Warm standby processes for dev workers (issue: save→served in under 0.1 s).
 * After a dev bundle's worker is spawned, a second deno process is started
 * with the same flags, cwd and environment; it loads the worker's packages
 * and waits. The next spawn of that bundle hands the standby its port and the
 * bundle to import instead of starting deno again, which cuts the runtime
 * start and the package loading (most of a Hono worker's start) off the reload.
 * A standby whose flags, cwd or environment no longer match is stopped and a
 * plain process started. Only used from source (the script is a file of this
 * repository) and for bundles run with read permission.
 */
export class StandbyPool {
  #launchInfo: (binPath: string) => LaunchInfo | undefined;
  #log: Logger;
  #delayMs: number;
  #deno: string;
  #ready = new Map<string, Standby>();
  #timers = new Map<string, ReturnType<typeof setTimeout>>();
  #closed = false;
  #idle: () => boolean;
  #wanted: (binPath: string) => boolean;

  constructor(options: StandbyPoolOptions) {
    const {
      launchInfo,
      logger = silentLogger,
      delayMs = 150,
      denoPath = Deno.execPath(),
      idle = () => true,
      wanted = () => true,
    } = options;
    this.#wanted = wanted;
    this.#idle = idle;
    this.#launchInfo = launchInfo;
    this.#log = logger;
    this.#delayMs = delayMs;
    this.#deno = denoPath;
  }

  /** Standbys currently waiting (for tests and status). */
  get size(): number {
    return this.#ready.size;
  }

  /** The supervisor's spawn function: a standby when one matches, else a new process. */
  spawn = (command: string, options: Deno.CommandOptions): SpawnedProcess => {
    this.#prune(command);
    const info = this.#closed ? undefined : this.#launchInfo(command);
    if (!info || !canImport(info.args) || !runsFromSource()) {
      return plainSpawn(command, options);
    }
    const key = JSON.stringify([
      info.args,
      options.cwd ?? "",
      stableEnv(options.env),
    ]);
    const standby = this.#ready.get(command);
    this.#ready.delete(command);
    let child: SpawnedProcess;
    if (standby && !standby.exited && standby.key === key) {
      child = this.#activate(standby, info.module, options.env ?? {});
      this.#log.debug("standby activated", {
        bin: command,
        pid: standby.child.pid,
        warm_ms: Date.now() - standby.spawnedAt,
      });
    } else {
      if (standby) this.#discard(standby);
      child = plainSpawn(command, options);
    }
    this.#schedule(command, options, info, key);
    return child;
  };

  /** Stops the standbys (and planned ones) of binaries no worker runs any more. */
  #prune(keep: string): void {
    for (const command of [...this.#timers.keys(), ...this.#ready.keys()]) {
      if (command === keep || this.#wanted(command)) continue;
      clearTimeout(this.#timers.get(command));
      this.#timers.delete(command);
      const standby = this.#ready.get(command);
      this.#ready.delete(command);
      if (standby) this.#discard(standby);
    }
  }

  /** Stops every waiting standby. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    const all = [...this.#ready.values()];
    this.#ready.clear();
    await Promise.all(all.map((s) => this.#discard(s)));
  }

  #activate(
    standby: Standby,
    module: string,
    env: Record<string, string>,
  ): SpawnedProcess {
    const line = JSON.stringify({ url: pathToFileURL(module).href, env });
    const writer = standby.child.stdin.getWriter();
    writer.write(encoder.encode(line + "\n")).catch((err) =>
      this.#log.debug("standby hand-over failed", { error: err })
    ).finally(() => writer.releaseLock());
    return Object.assign(standby.child, { spawnedAt: standby.spawnedAt });
  }

  #schedule(
    command: string,
    options: Deno.CommandOptions,
    info: LaunchInfo,
    key: string,
  ): void {
    clearTimeout(this.#timers.get(command));
    this.#timers.set(
      command,
      setTimeout(() => {
        this.#timers.delete(command);
        if (this.#closed || this.#ready.has(command)) return;
        if (!this.#idle()) {
          this.#schedule(command, options, info, key);
          return;
        }
        try {
          this.#ready.set(command, this.#start(options, info, key));
        } catch (err) {
          this.#log.debug("standby not started", { bin: command, error: err });
        }
      }, this.#delayMs),
    );
  }

  #start(
    options: Deno.CommandOptions,
    info: LaunchInfo,
    key: string,
  ): Standby {
    const [, ...args] = info.args;
    const child = new Deno.Command(this.#deno, {
      ...options,
      args: [...args, SCRIPT],
      env: {
        ...stableEnv(options.env),
        TQ_STANDBY_PRELOAD: JSON.stringify(info.externals),
      },
    }).spawn();
    const standby: Standby = {
      child,
      spawnedAt: Date.now(),
      key,
      exited: false,
    };
    child.status.then(() => standby.exited = true);
    return standby;
  }

  async #discard(standby: Standby): Promise<void> {
    if (!standby.exited) killGroup(standby.child.pid, "SIGKILL");
    await standby.child.status;
    for (const stream of ["stdout", "stderr"] as const) {
      try {
        await standby.child[stream].cancel();
      } catch {
        // Not piped, or already read.
      }
    }
    try {
      standby.child.stdin.close();
    } catch {
      // Closed by its exit.
    }
  }
}
