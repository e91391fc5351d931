import { Slots } from "../slots.ts";

/** How long a request may wait for headers before the client's signal is watched. */
const WATCH_AFTER_MS = 200;
/** Granularity of every deadline: one shared timer checks them all this often. */
const TICK_MS = 25;

/** Deadlines in force; one timer sweeps them (no timer per request). */
const live = new Slots<HeaderDeadline>();
let sweeper: ReturnType<typeof setTimeout> | undefined;

function sweep(): void {
  sweeper = undefined;
  const now = performance.now();
  live.forEach((deadline) => deadline.check(now));
  if (live.size > 0) arm();
}

function arm(): void {
  if (sweeper !== undefined) return;
  const timer = setTimeout(sweep, TICK_MS);
  // In-flight requests keep the process alive, not this timer.
  Deno.unrefTimer(timer);
  sweeper = timer;
}

/**
 * The wait for a worker's response headers of one proxied request. It fires
 * (`timedOut`) when no headers came `timeoutMs` after the request was
 * written in full — time spent uploading a body is the client's, not the
 * worker's — and (`clientGone`) when the client goes away; either way the
 * `onAbort` action runs (the transport closes the worker connection).
 *
 * Deadlines are checked by one shared timer every {@linkcode TICK_MS}, so a
 * fast request costs taking and emptying a slot instead of a timer. The
 * client's `req.signal` is only watched once a request has waited
 * {@linkcode WATCH_AFTER_MS}: a listener on every fast request costs
 * measurable time. A client that left earlier is still noticed, since
 * `aborted` is checked when the watch starts.
 */
export class HeaderDeadline {
  readonly #timeoutMs: number;
  readonly #client: Request;
  readonly #started: number;
  #since: number;
  #uploading = false;
  #watching = false;
  #timedOut = false;
  #clientGone = false;
  #action: (() => void) | undefined;
  readonly #slot: number;

  /** Starts the wait for `req`, which is answered 504 after `timeoutMs` without headers. */
  constructor(req: Request, timeoutMs: number) {
    this.#client = req;
    this.#timeoutMs = timeoutMs;
    this.#started = this.#since = performance.now();
    this.#slot = live.add(this);
    arm();
  }

  /** True when it fired because the worker was too slow. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  /** True when it fired because the client went away. */
  get clientGone(): boolean {
    return this.#clientGone;
  }

  /** True once it fired, for either reason. */
  get fired(): boolean {
    return this.#timedOut || this.#clientGone;
  }

  /** Sets what to do when it fires (replacing the previous action); runs at once if it already fired. */
  onAbort(action: () => void): void {
    this.#action = action;
    if (this.fired) action();
  }

  /** Marks a body upload in progress: the worker's time does not run until {@linkcode uploaded}. */
  uploading(): void {
    this.#uploading = true;
  }

  /** The upload is complete (or stopped): the wait for headers starts now. */
  uploaded(): void {
    this.#uploading = false;
    this.#since = performance.now();
  }

  /** Stops the wait and the client watch (headers arrived, or the request failed). */
  clear(): void {
    live.delete(this.#slot, this);
    this.#action = undefined;
    if (this.#watching) {
      this.#watching = false;
      this.#client.signal.removeEventListener("abort", this.#onClientGone);
    }
  }

  /** Called by the shared timer. */
  check(now: number): void {
    if (!this.#watching && now - this.#started >= WATCH_AFTER_MS) {
      const signal = this.#client.signal;
      if (signal.aborted) return this.#onClientGone();
      this.#watching = true;
      signal.addEventListener("abort", this.#onClientGone, { once: true });
    }
    if (!this.#uploading && now - this.#since >= this.#timeoutMs) {
      this.#timedOut = true;
      this.#fire();
    }
  }

  #fire(): void {
    const action = this.#action;
    this.clear();
    action?.();
  }

  #onClientGone = (): void => {
    this.#clientGone = true;
    this.#fire();
  };
}
