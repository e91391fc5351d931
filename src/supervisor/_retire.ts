// Folder-private: how an instance taken out of service ends — its
// connections closed, its requests drained, its process group stopped and
// its port freed.

import type { Logger } from "../log/mod.ts";
import { within } from "../timeouts.ts";
import { type Clock, wait } from "./clock.ts";
import type { Instance } from "./instance.ts";
import type { PortPool } from "./port_pool.ts";
import type { WorkerEntry } from "./worker.ts";

/** What an instance's connection drain that ran out of time rejects with (never shown). */
const DRAIN_OVER = new Error("WebSocket drain over");

/** Closes what stays connected to an instance; see `SupervisorOptions.retireConnections`. */
export type RetireConnections = (
  instance: { worker: string; origin: string; drainMs: number },
) => Promise<void>;

/** Options for {@linkcode retireInstance}. */
export interface RetireOptions {
  /** The worker the instance belonged to. */
  entry: WorkerEntry;
  /** Pause before the drain starts (`workers.restart_delay_ms`, 0 when removing). */
  delayMs: number;
  /**
   * SIGKILL after this long without an exit (`workers.shutdown_grace_period_ms`);
   * read when the stop begins, so a config reload meanwhile applies.
   */
  graceMs: () => number;
  /** Where the port goes back once the group is gone. */
  pool: PortPool;
  /** The logger. */
  logger: Logger;
  /** Time and timers of the pause. */
  clock: Clock;
  /** Closes the instance's WebSockets. Default: nothing. */
  retireConnections?: RetireConnections | undefined;
}

/**
 * Drains and stops an instance already out of its route: its connections get
 * `websocket_drain_ms` (+1 s) to close, its requests `drain_timeout_ms` to
 * finish, then SIGTERM (SIGKILL after the grace period); its port is freed
 * and its requests counted as the worker's. The instance is marked draining
 * and its connections told before the first await.
 */
export async function retireInstance(
  instance: Instance,
  options: RetireOptions,
): Promise<void> {
  const { entry, delayMs, graceMs, pool, logger, clock, retireConnections } =
    options;
  entry.draining.add(instance);
  instance.drain();
  const drainMs = entry.spec.settings.websocket_drain_ms;
  const connections = retireConnections?.({
    worker: entry.name,
    origin: instance.origin,
    drainMs,
  });
  if (delayMs > 0) await wait(clock, delayMs).fired;
  if (connections) {
    // Bounded: the proxy's closing handshakes are, but this is its promise.
    await within(connections, {
      ms: drainMs + 1000,
      onTimeout: () => DRAIN_OVER,
    }).catch(
      () => {},
    );
  }
  const idle = await instance.waitIdle(entry.spec.settings.drain_timeout_ms);
  if (!idle) {
    logger.warn("drain timed out", {
      worker: entry.name,
      pid: instance.pid,
      in_flight: instance.inFlight,
    });
  }
  const status = await instance.stop(graceMs());
  pool.release(instance.port);
  entry.draining.delete(instance);
  entry.retiredRequests += instance.requests;
  // A worker that dies of another signal while it stops (SIGABRT from a
  // thread left running) has a bug its author wants to hear about.
  const abnormal = status.signal !== null && status.signal !== "SIGTERM" &&
    status.signal !== "SIGKILL";
  logger[abnormal ? "warn" : "info"]("worker instance stopped", {
    worker: entry.name,
    pid: instance.pid,
    code: status.code,
    signal: status.signal ?? undefined,
  });
}
