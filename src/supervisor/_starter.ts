// Folder-private: spawning a worker's instances on pool ports and waiting
// for their health.

import type { Config, Mode } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Clock } from "./clock.ts";
import { Instance, type SpawnFn } from "./instance.ts";
import type { PortPool } from "./port_pool.ts";
import type { WorkerEntry } from "./worker.ts";
import { workerEnv } from "./_env.ts";

/** Options for {@linkcode InstanceStarter}. */
export interface InstanceStarterOptions {
  /** Server mode, passed to workers as `TQ_MODE`. */
  mode: Mode;
  /** The running config (read at each start). */
  config: () => Config;
  /** Where ports come from and go back to. */
  pool: PortPool;
  /** The logger of the instances' output. */
  logger: Logger;
  /** Base environment of every worker. */
  env: Record<string, string>;
  /** Process spawner. Default: the instance's own. */
  spawn?: SpawnFn | undefined;
  /** fetch for health probes. Default: the instance's own. */
  fetch?: typeof fetch | undefined;
  /** Time and timers of the instances. */
  clock: Clock;
}

/** Options for {@linkcode InstanceStarter.startHealthy}. */
export interface StartHealthyOptions {
  /** How many instances to start. */
  count: number;
  /** Aborts the health waits (the server stopping, the worker removed). */
  signal: AbortSignal;
}

/** Starts a worker's instances on ports of the pool and waits for their health. */
export class InstanceStarter {
  #options: InstanceStarterOptions;

  constructor(options: InstanceStarterOptions) {
    this.#options = options;
  }

  /**
   * Starts `count` instances and waits until each is healthy; on a failure
   * every one of them is stopped (SIGKILL after the grace period) and its
   * port freed, and the error is thrown.
   */
  async startHealthy(
    entry: WorkerEntry,
    options: StartHealthyOptions,
  ): Promise<Instance[]> {
    const { count, signal } = options;
    const { config, pool } = this.#options;
    const { settings } = entry.spec;
    const fresh: Instance[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const instance = this.#start(entry);
        fresh.push(instance);
        entry.starting.add(instance);
      }
      await Promise.all(fresh.map((instance) =>
        instance.waitHealthy({
          path: settings.health_path,
          delayMs: config().workers.startup_delay_ms,
          timeoutMs: settings.startup_timeout_ms,
        }, signal)
      ));
      return fresh;
    } catch (err) {
      // Its whole group goes, SIGKILL after the grace period; then its port is free.
      await Promise.all(fresh.map(async (instance) => {
        await instance.stop(config().workers.shutdown_grace_period_ms);
        pool.release(instance.port);
      }));
      throw err;
    } finally {
      for (const instance of fresh) entry.starting.delete(instance);
    }
  }

  #start(entry: WorkerEntry): Instance {
    const { mode, config, pool, logger, env, spawn, fetch, clock } =
      this.#options;
    const port = pool.acquire();
    try {
      return new Instance({
        name: entry.name,
        command: entry.spec.binPath,
        cwd: entry.spec.dir,
        env: workerEnv(entry.spec, port, {
          base: env,
          mode,
          memoryMb: config().deployment[mode].resources.worker_max_memory_mb,
        }),
        port,
        logger,
        clock,
        ...(spawn ? { spawn } : {}),
        ...(fetch ? { fetch } : {}),
      });
    } catch (err) {
      pool.release(port);
      throw err;
    }
  }
}
