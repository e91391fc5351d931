/**
 * Timeouts of per-request waits on one shared timer: client body reads (the
 * proxy) and the compressor's peek at an answer of unknown length. A
 * `setTimeout` and `clearTimeout` per wait cost about a fifth of the
 * throughput of small POSTs (bench/proxy_bench.ts `post4k`), and each timer
 * sits in the runtime's long-lived timer table, which promotes the request's
 * objects to the old generation (see {@linkcode Slots}). A sweep every
 * {@linkcode TICK_MS} is exact enough for these waits.
 *
 * @module
 */
import { Slots } from "./slots.ts";

/** How often pending deadlines are checked: the most a timeout fires late. */
export const TICK_MS = 25;

interface Pending {
  at: number;
  fire: () => void;
}

const pending = new Slots<Pending>();
let timer: ReturnType<typeof setTimeout> | undefined;

function sweep(): void {
  timer = undefined;
  const now = performance.now();
  pending.forEach((entry, slot) => {
    if (now >= entry.at) {
      pending.delete(slot, entry);
      entry.fire();
    }
  });
  arm();
}

function arm(): void {
  if (timer !== undefined || pending.size === 0) return;
  timer = setTimeout(sweep, TICK_MS);
  // Never what keeps a process alive: every deadline belongs to a request.
  Deno.unrefTimer(timer);
}

/** Options for {@linkcode within}. */
export interface WithinOptions {
  /** How long `work` may take, in ms. */
  ms: number;
  /** Builds the error `within` rejects with when the time is up. */
  onTimeout: () => Error;
}

/**
 * Settles like `work`, or rejects with `onTimeout()` when `work` has not
 * settled within `ms` (checked every {@linkcode TICK_MS}).
 */
export function within<T>(
  work: Promise<T>,
  options: WithinOptions,
): Promise<T> {
  const { ms, onTimeout } = options;
  return new Promise<T>((resolve, reject) => {
    const entry: Pending = {
      at: performance.now() + ms,
      fire: () => reject(onTimeout()),
    };
    const slot = pending.add(entry);
    arm();
    work.then((value) => {
      pending.delete(slot, entry);
      resolve(value);
    }, (err) => {
      pending.delete(slot, entry);
      reject(err);
    });
  });
}

/** Deadlines not yet settled (for tests). */
export function pendingCount(): number {
  return pending.size;
}
