/**
 * Folder-private: why the proxy cannot serve a request, and what each reason
 * logs. What a client can cause (400, 408, 413, 499) is a debug line naming
 * the client; what a worker causes (502, 504) is a warning naming the
 * worker. Each returns a {@linkcode ProxyFailure}; the injected `onError`
 * builds the answer from it.
 */
import type { Logger } from "../log/logger.ts";
import { describeError, type ProxyFailure } from "./_errors.ts";
import type { HeaderDeadline } from "./_deadline.ts";
import type { RequestContext } from "./context.ts";
import {
  BodyTooLargeError,
  ClientBodyError,
  ClientTimeoutError,
  MalformedBodyError,
  type SpoolError,
} from "./_request_writer.ts";

/** Status for a request whose client left before the worker answered (nginx's 499). */
export const CLIENT_CLOSED = 499;

/** RFC 9112 §3.2: a request without Host is answered 400. */
export const MISSING_HOST: ProxyFailure = {
  status: 400,
  message: "The request has no Host header",
};

/** No worker route matches the path. */
export const NO_ROUTE: ProxyFailure = {
  status: 404,
  message: "No route for this path",
};

/** What every failure of a forwarded request needs. */
export interface FailureContext {
  req: Request;
  logger: Logger;
  ctx: RequestContext;
}

/** The worker's name and the request id of a forwarded request, for messages and logs. */
function names(ctx: RequestContext): { worker: string; requestId: string } {
  return { worker: ctx.upstream!.name, requestId: ctx.requestId! };
}

/** 503 with `Retry-After`: no healthy instance. */
export function unavailable(ctx: RequestContext): ProxyFailure {
  const upstream = ctx.upstream!;
  return {
    status: 503,
    message: `No healthy instance of worker "${upstream.name}"`,
    requestId: ctx.requestId,
    headers: { "retry-after": String(upstream.retryAfterSeconds()) },
  };
}

/** 499: the client left while its request waited for an instance. */
export function clientClosed(ctx: RequestContext): ProxyFailure {
  return {
    status: CLIENT_CLOSED,
    message: "Client closed request",
    requestId: ctx.requestId,
  };
}

/**
 * 400 for a GET or HEAD with a body: Deno.serve drops it, so it is refused
 * rather than sent as a length without its bytes (which would desync the
 * worker).
 */
export function bodyRefused(failure: FailureContext): ProxyFailure {
  const { req, logger, ctx } = failure;
  logger.debug("request body refused", {
    client: ctx.forwarding!.clientIp,
    method: req.method,
    request_id: ctx.requestId,
  });
  // No Connection: close: Deno.serve drains a whole body and adds it itself
  // for an unfinished one (setting it too sends it twice).
  return {
    status: 400,
    message: `A ${req.method} request with a body is not supported`,
    requestId: ctx.requestId,
  };
}

/**
 * 500 for a body that could not be spooled: the operator's to fix (nginx
 * answers 500 too), a disk full or a missing `server.body_temp_dir`.
 */
export function spoolFailure(
  err: SpoolError,
  failure: FailureContext,
): ProxyFailure {
  const { logger, ctx } = failure;
  logger.error("request body not spooled", {
    key: "server.body_temp_dir",
    error: err.message,
    cause: describeError(err.cause),
    request_id: ctx.requestId,
  });
  return {
    status: 500,
    message: "The request body could not be stored",
    requestId: ctx.requestId,
    headers: { connection: "close" },
    cause: err,
  };
}

/** True for the body errors a client causes (stalled, too large, gone). */
export function isClientFailure(err: unknown): boolean {
  return err instanceof ClientTimeoutError ||
    err instanceof BodyTooLargeError || err instanceof ClientBodyError;
}

/**
 * 400 (malformed chunked framing), 408, 413 or 499 for a body error of the
 * client, logged at debug level.
 *
 * `Connection: close` is said once: Deno.serve adds it itself when the
 * answer leaves while a read of the body is pending (the 408: the client
 * stalled mid-read), and not when the body was cancelled (the 413: every
 * path cancels it first), so only the 413 sets it.
 *
 * @throws The error itself when it is not a client body error.
 */
export function clientFailure(
  err: unknown,
  failure: FailureContext,
): ProxyFailure {
  const { logger, ctx } = failure;
  const { worker, requestId } = names(ctx);
  const fields = {
    client: ctx.forwarding!.clientIp,
    worker,
    request_id: requestId,
  };
  if (err instanceof ClientTimeoutError) {
    logger.debug("client timed out", { ...fields, timeout_ms: err.timeoutMs });
    return {
      status: 408,
      message: `The request body stalled for ${err.timeoutMs} ms`,
      requestId,
      cause: err,
    };
  }
  if (err instanceof BodyTooLargeError) {
    logger.debug("request body too large", { ...fields, limit: err.limit });
    return {
      status: 413,
      message: `The request body is larger than ${err.limit} bytes`,
      requestId,
      headers: { connection: "close" },
      cause: err,
    };
  }
  if (err instanceof MalformedBodyError) {
    // Deno.serve closes the connection after it (its parser lost the framing).
    logger.debug("malformed request body", {
      ...fields,
      error: String((err.cause as Error)?.message ?? err.cause),
    });
    return {
      status: 400,
      message: "Malformed chunked request body",
      requestId,
      cause: err,
    };
  }
  if (!(err instanceof ClientBodyError)) throw err;
  logger.debug("client closed request", fields);
  return {
    status: CLIENT_CLOSED,
    message: "Client closed request",
    requestId,
    cause: err,
  };
}

/** 504 (no headers in time), 499 (client gone) or 502 (anything else) for a failed exchange. */
export function exchangeFailure(
  err: unknown,
  failure: FailureContext & { deadline: HeaderDeadline; origin: string },
): ProxyFailure {
  const { req, logger, ctx, deadline, origin } = failure;
  const { worker, requestId } = names(ctx);
  const timeoutMs = ctx.upstream!.writeTimeoutMs;
  if (deadline.timedOut) {
    logger.warn("worker timed out", {
      worker,
      origin,
      timeout_ms: timeoutMs,
      request_id: requestId,
    });
    return {
      status: 504,
      message: `Worker "${worker}" did not answer within ${timeoutMs} ms`,
      requestId,
      cause: err,
    };
  }
  if (deadline.clientGone || req.signal.aborted) {
    logger.debug("client closed request", { worker, request_id: requestId });
    return {
      status: CLIENT_CLOSED,
      message: "Client closed request",
      requestId,
      cause: err,
    };
  }
  logger.warn("worker unreachable", {
    worker,
    origin,
    error: describeError(err),
    request_id: requestId,
  });
  return {
    status: 502,
    message: `Worker "${worker}" is unreachable`,
    requestId,
    cause: err,
  };
}
