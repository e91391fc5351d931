import type { Logger } from "../log/mod.ts";
import { PROBE_TIMEOUT_CAP_MS } from "../config/defaults.ts";
import type { Instance } from "./instance.ts";
import type { WorkerEntry } from "./worker.ts";

/** Failed health probes in a row after which a live instance is replaced. */
export const HEALTH_FAILURES = 3;

/** Options for {@linkcode HealthMonitor}. */
export interface HealthMonitorOptions {
  /** Time between probe rounds; 0 disables the monitor. */
  intervalMs: number;
  /** Logger. */
  logger: Logger;
  /** Called once per {@linkcode HEALTH_FAILURES} failures in a row of one instance. */
  onUnhealthy: (entry: WorkerEntry, instance: Instance) => void;
}

/**
 * Probes every live instance on its health path each interval. An instance
 * failing {@linkcode HEALTH_FAILURES} probes in a row marks its worker
 * `unhealthy` and asks for a replace of that instance; while it keeps failing it asks again
 * every {@linkcode HEALTH_FAILURES} probes.
 */
export class HealthMonitor {
  #workers: ReadonlyMap<string, WorkerEntry>;
  #options: HealthMonitorOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #probing = false;

  constructor(
    workers: ReadonlyMap<string, WorkerEntry>,
    options: HealthMonitorOptions,
  ) {
    this.#workers = workers;
    this.#options = options;
  }

  /** Starts probing (idempotent). */
  start(): void {
    if (this.#options.intervalMs <= 0 || this.#timer) return;
    this.#timer = setInterval(() => this.#round(), this.#options.intervalMs);
  }

  /** Stops probing. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #round(): Promise<void> {
    if (this.#probing) return;
    this.#probing = true;
    const { intervalMs, logger, onUnhealthy } = this.#options;
    try {
      await Promise.all([...this.#workers.values()].map(async (entry) => {
        if (entry.running || entry.state.status === "stopping") return;
        const path = entry.spec.settings.health_path;
        for (const instance of entry.active) {
          const ok = await instance.probe(
            path,
            Math.min(PROBE_TIMEOUT_CAP_MS, intervalMs),
          );
          instance.failedProbes = ok ? 0 : instance.failedProbes + 1;
          if (
            instance.failedProbes === 0 ||
            instance.failedProbes % HEALTH_FAILURES !== 0
          ) continue;
          const error =
            `Health check failed ${instance.failedProbes} times in a row`;
          entry.transition({ status: "unhealthy", error });
          logger.warn("worker unhealthy", {
            worker: entry.name,
            pid: instance.pid,
            error,
          });
          onUnhealthy(entry, instance);
          return;
        }
      }));
    } finally {
      this.#probing = false;
    }
  }
}
