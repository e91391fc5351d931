/**
 * Folder-private: timeouts of client body reads on one shared timer. A
 * `setTimeout` and `clearTimeout` per read cost about a fifth of the
 * throughput of small POSTs (bench/proxy_bench.ts `post4k`); these deadlines
 * are seconds long, so a sweep every {@linkcode TICK_MS} is exact enough.
 */

/** How often pending deadlines are checked: the most a timeout fires late. */
export const TICK_MS = 25;

interface Pending {
  at: number;
  fire: () => void;
}

const pending = new Set<Pending>();
let timer: ReturnType<typeof setTimeout> | undefined;

function sweep(): void {
  timer = undefined;
  const now = performance.now();
  for (const entry of pending) {
    if (now >= entry.at) {
      pending.delete(entry);
      entry.fire();
    }
  }
  arm();
}

function arm(): void {
  if (timer !== undefined || pending.size === 0) return;
  timer = setTimeout(sweep, TICK_MS);
  // Never what keeps a process alive: every deadline belongs to a request.
  Deno.unrefTimer(timer);
}

/**
 * Settles like `work`, or rejects with `onTimeout()` when `work` has not
 * settled within `ms` (checked every {@linkcode TICK_MS}).
 */
export function within<T>(
  work: Promise<T>,
  ms: number,
  onTimeout: () => Error,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const entry: Pending = {
      at: performance.now() + ms,
      fire: () => reject(onTimeout()),
    };
    pending.add(entry);
    arm();
    work.then((value) => {
      pending.delete(entry);
      resolve(value);
    }, (err) => {
      pending.delete(entry);
      reject(err);
    });
  });
}

/** Deadlines not yet settled (for tests). */
export function pendingCount(): number {
  return pending.size;
}
