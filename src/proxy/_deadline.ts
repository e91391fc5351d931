/** How long a request may wait for headers before the client's signal is watched. */
const WATCH_AFTER_MS = 200;

/**
 * The abort signal of one proxied request until the worker's response headers
 * arrive: it aborts when no headers came `timeoutMs` after the request (or
 * after the last uploaded chunk of its body: a slow upload is progress, not a
 * stalled worker), or when the client goes away.
 *
 * The client's `req.signal` is only watched once a request has waited
 * {@linkcode WATCH_AFTER_MS}: under Deno.serve's legacy abort behaviour every
 * successful request aborts that signal, and a listener that aborts the
 * fetch measurably slows every fast request. A client that left earlier is
 * still noticed, since `aborted` is checked when the watch starts.
 */
export class HeaderDeadline {
  readonly #controller = new AbortController();
  readonly #timeoutMs: number;
  readonly #client: Request;
  #timer: ReturnType<typeof setTimeout>;
  readonly #started: number;
  #progress = 0;
  #watching = false;
  #timedOut = false;

  /** Starts the timer for `req`, which is answered 504 after `timeoutMs` without headers. */
  constructor(req: Request, timeoutMs: number) {
    this.#client = req;
    this.#timeoutMs = timeoutMs;
    this.#started = performance.now();
    this.#timer = setTimeout(
      this.#onTimer,
      timeoutMs < WATCH_AFTER_MS ? timeoutMs : WATCH_AFTER_MS,
    );
  }

  /** The signal to pass to the worker request. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** True when the signal aborted because the worker was too slow. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  /** Records upload progress: the wait for headers restarts from now. */
  touch(): void {
    this.#progress = performance.now();
  }

  /** Stops the timer and the client watch (headers arrived, or the request failed). */
  clear(): void {
    clearTimeout(this.#timer);
    if (this.#watching) {
      this.#watching = false;
      this.#client.signal.removeEventListener("abort", this.#onClientGone);
    }
  }

  #onClientGone = (): void => {
    this.#controller.abort(this.#client.signal.reason);
  };

  #onTimer = (): void => {
    if (!this.#watching) {
      // First tick: start watching the client, then wait for the rest.
      const signal = this.#client.signal;
      if (signal.aborted) {
        this.#controller.abort(signal.reason);
        return;
      }
      this.#watching = true;
      signal.addEventListener("abort", this.#onClientGone, { once: true });
    }
    const since = Math.max(this.#started, this.#progress);
    const left = this.#timeoutMs - (performance.now() - since);
    if (left > 1) {
      this.#timer = setTimeout(this.#onTimer, left);
      return;
    }
    this.#timedOut = true;
    this.clear();
    this.#controller.abort(
      new DOMException(
        "Worker sent no response headers in time",
        "TimeoutError",
      ),
    );
  };
}

/**
 * Passes a request body through, touching `deadline` on every chunk so a slow
 * upload does not count against the wait for response headers.
 */
export function trackUpload(
  body: ReadableStream<Uint8Array>,
  deadline: HeaderDeadline,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = await reader.read();
      deadline.touch();
      if (chunk.done) controller.close();
      else controller.enqueue(chunk.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
