/** First crash-restart delay. */
export const BACKOFF_START_MS = 100;
/** Longest crash-restart delay. */
export const BACKOFF_MAX_MS = 30_000;
/** An instance up this long resets the backoff when it crashes. */
export const BACKOFF_STABLE_MS = 10_000;

/**
 * Crash-restart delays (SPEC §5): 100 ms, doubling up to 30 s; an instance
 * that stayed up 10 s starts the sequence again.
 */
export class Backoff {
  #next = BACKOFF_START_MS;

  /** The delay to wait now; the one after it is twice as long (at most 30 s). */
  next(): number {
    const delay = this.#next;
    this.#next = Math.min(delay * 2, BACKOFF_MAX_MS);
    return delay;
  }

  /** Notes that an instance ended after `upMs` of serving; a stable one resets the sequence. */
  ended(upMs: number): void {
    if (upMs >= BACKOFF_STABLE_MS) this.#next = BACKOFF_START_MS;
  }
}
