/** A timer handle of a {@linkcode Clock}. */
export type TimerId = ReturnType<typeof setTimeout> | number;

/** Time and timers, injectable so tests can drive backoff without waiting. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms`. */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** Cancels a timer of {@linkcode setTimeout}; unknown ids are ignored. */
  clearTimeout(id: TimerId | undefined): void;
}

/** The real clock: `Date.now` and the global timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};

/** A pending wait on a {@linkcode Clock}: `fired` resolves after its time unless cancelled. */
export interface Wait {
  /** Resolves once the time has passed; never, when cancelled first. */
  readonly fired: Promise<void>;
  /** Cancels the timer; harmless once it fired. */
  cancel(): void;
}

/** Starts a wait of `ms` on `clock`; cancel it once something else settled the race. */
export function wait(clock: Clock, ms: number): Wait {
  let id: TimerId | undefined;
  const fired = new Promise<void>((resolve) => {
    id = clock.setTimeout(resolve, ms);
  });
  return { fired, cancel: () => clock.clearTimeout(id) };
}
