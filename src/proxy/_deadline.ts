/** How long a request may wait for headers before the client's signal is watched. */
const WATCH_AFTER_MS = 200;

/**
 * The wait for a worker's response headers of one proxied request. It fires
 * (`timedOut`) when no headers came `timeoutMs` after the request was
 * written in full — time spent uploading a body is the client's, not the
 * worker's — and (`clientGone`) when the client goes away; either way the
 * `onAbort` action runs (the transport closes the worker connection).
 *
 * The client's `req.signal` is only watched once a request has waited
 * {@linkcode WATCH_AFTER_MS}: under Deno.serve's legacy abort behaviour every
 * successful request aborts that signal, and a listener on every fast request
 * costs measurable time. A client that left earlier is still noticed, since
 * `aborted` is checked when the watch starts.
 */
export class HeaderDeadline {
  readonly #timeoutMs: number;
  readonly #client: Request;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #since: number;
  #uploading = false;
  #watching = false;
  #timedOut = false;
  #clientGone = false;
  #action: (() => void) | undefined;

  /** Starts the timer for `req`, which is answered 504 after `timeoutMs` without headers. */
  constructor(req: Request, timeoutMs: number) {
    this.#client = req;
    this.#timeoutMs = timeoutMs;
    this.#since = performance.now();
    this.#timer = setTimeout(
      this.#onTimer,
      timeoutMs < WATCH_AFTER_MS ? timeoutMs : WATCH_AFTER_MS,
    );
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

  /** Stops the timer and the client watch (headers arrived, or the request failed). */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#action = undefined;
    if (this.#watching) {
      this.#watching = false;
      this.#client.signal.removeEventListener("abort", this.#onClientGone);
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

  #onTimer = (): void => {
    if (!this.#watching) {
      // First tick: start watching the client, then wait for the rest.
      const signal = this.#client.signal;
      if (signal.aborted) return this.#onClientGone();
      this.#watching = true;
      signal.addEventListener("abort", this.#onClientGone, { once: true });
    }
    const left = this.#uploading
      ? this.#timeoutMs
      : this.#timeoutMs - (performance.now() - this.#since);
    if (left > 1) {
      this.#timer = setTimeout(this.#onTimer, left);
      return;
    }
    this.#timedOut = true;
    this.#fire();
  };
}
