/**
 * Folder-private: the errors of the worker transport (`_transport.ts`), by
 * where the exchange failed, so the proxy knows what it may resend: nothing
 * sent, no response at all, or a response cut before the client saw any of
 * it.
 */

/** The worker could not be reached: nothing was sent (safe to send elsewhere). */
export class ConnectError extends TypeError {}

/**
 * The connection closed or reset before any byte of a response came back.
 * `written` says whether request bytes may have reached the worker.
 */
export class NoResponseError extends TypeError {
  constructor(
    message: string,
    readonly written: boolean,
    readonly reused: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The connection failed inside a response head, or inside a body read whole
 * before answering: the client has seen none of it, so an idempotent
 * request may go to another instance (nginx's `proxy_next_upstream error`).
 */
export class CutResponseError extends TypeError {}

/** Options for {@linkcode headFailure}. */
export interface HeadFailureOptions {
  /** Some bytes of the response had come. */
  received: boolean;
  /** The connection came from the keep-alive pool. */
  reused: boolean;
  /** Why the read failed. Default none: the connection closed. */
  cause?: unknown;
}

/**
 * The error for a connection that failed (`cause`) or closed while a
 * response head was awaited: a cut response once some of it came, else no
 * response at all (which a reused connection may retry).
 */
export function headFailure(options: HeadFailureOptions): TypeError {
  const { received, reused, cause } = options;
  const errorOptions = cause === undefined ? undefined : { cause };
  if (received) {
    return new CutResponseError(
      cause === undefined
        ? "Connection to the worker closed inside its response headers"
        : "Connection to the worker failed",
      errorOptions,
    );
  }
  return cause === undefined
    ? new NoResponseError(
      "Connection to the worker closed before its response",
      true,
      reused,
    )
    : new NoResponseError(
      "Connection to the worker reset before its response",
      true,
      reused,
      errorOptions,
    );
}

/** `err` as a TypeError: itself, or a failed connection caused by it. */
export function asTypeError(err: unknown): TypeError {
  return err instanceof TypeError
    ? err
    : new TypeError("Connection to the worker failed", { cause: err });
}
