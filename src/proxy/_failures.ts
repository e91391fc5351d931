/**
 * Folder-private: the answers of the proxy when a request cannot be served,
 * and what each logs. What a client can cause (408, 413, 499) is a debug
 * line naming the client; what a worker causes (502, 504) is a warning
 * naming the worker.
 */
import type { Logger } from "../log/logger.ts";
import type { Upstream } from "../routes/route_table.ts";
import { describeError, errorResponse } from "./_errors.ts";
import type { HeaderDeadline } from "./_deadline.ts";
import {
  BodyTooLargeError,
  ClientBodyError,
  ClientTimeoutError,
  MalformedBodyError,
} from "./_request_writer.ts";

/** Status for a request whose client left before the worker answered (nginx's 499). */
export const CLIENT_CLOSED = 499;

/** What every failure answer needs. */
export interface FailureContext {
  req: Request;
  logger: Logger;
  upstream: Upstream;
  requestId: string;
}

/** 503 with `Retry-After`: no healthy instance. */
export function unavailable(
  req: Request,
  upstream: Upstream,
  requestId: string,
): Response {
  return errorResponse(
    req,
    503,
    `No healthy instance of worker "${upstream.name}"`,
    {
      requestId,
      headers: { "retry-after": String(upstream.retryAfterSeconds()) },
    },
  );
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
  ctx: FailureContext & { clientIp: string },
): Response {
  const { req, logger, upstream, requestId } = ctx;
  const fields = {
    client: ctx.clientIp,
    worker: upstream.name,
    request_id: requestId,
  };
  if (err instanceof ClientTimeoutError) {
    logger.debug("client timed out", { ...fields, timeout_ms: err.timeoutMs });
    return errorResponse(
      req,
      408,
      `The request body stalled for ${err.timeoutMs} ms`,
      { requestId },
    );
  }
  if (err instanceof BodyTooLargeError) {
    logger.debug("request body too large", { ...fields, limit: err.limit });
    return errorResponse(
      req,
      413,
      `The request body is larger than ${err.limit} bytes`,
      { requestId, headers: { connection: "close" } },
    );
  }
  if (err instanceof MalformedBodyError) {
    // Deno.serve closes the connection after it (its parser lost the framing).
    logger.debug("malformed request body", {
      ...fields,
      error: String((err.cause as Error)?.message ?? err.cause),
    });
    return errorResponse(req, 400, "Malformed chunked request body", {
      requestId,
    });
  }
  if (!(err instanceof ClientBodyError)) throw err;
  logger.debug("client closed request", fields);
  return errorResponse(req, CLIENT_CLOSED, "Client closed request", {
    requestId,
  });
}

/** 504 (no headers in time), 499 (client gone) or 502 (anything else) for a failed exchange. */
export function failure(
  err: unknown,
  ctx: FailureContext & { deadline: HeaderDeadline; origin: string },
): Response {
  const { req, logger, upstream, requestId, deadline, origin } = ctx;
  const worker = upstream.name;
  if (deadline.timedOut) {
    logger.warn("worker timed out", {
      worker,
      origin,
      timeout_ms: upstream.writeTimeoutMs,
      request_id: requestId,
    });
    return errorResponse(
      req,
      504,
      `Worker "${worker}" did not answer within ${upstream.writeTimeoutMs} ms`,
      { requestId },
    );
  }
  if (deadline.clientGone || req.signal.aborted) {
    logger.debug("client closed request", { worker, request_id: requestId });
    return errorResponse(req, CLIENT_CLOSED, "Client closed request", {
      requestId,
    });
  }
  logger.warn("worker unreachable", {
    worker,
    origin,
    error: describeError(err),
    request_id: requestId,
  });
  return errorResponse(req, 502, `Worker "${worker}" is unreachable`, {
    requestId,
  });
}
