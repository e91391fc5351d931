/**
 * Folder-private: one plain HTTP request to a worker — its body read (or
 * spooled) within the limits, an instance acquired, the exchange over the
 * transport, resent on a healthy instance when that is safe, and the worker's
 * answer handed to the client with the instance released exactly once.
 */
import type { UpstreamTarget } from "../routes/route_table.ts";
import type { Logger } from "../log/logger.ts";
import { describeError, type ErrorHandler } from "./_errors.ts";
import { downstreamPairs, type HeaderPairs, requestHead } from "./_headers.ts";
import { releasingBody } from "./_body.ts";
import {
  bodyRefused,
  clientClosed,
  clientFailure,
  exchangeFailure,
  isClientFailure,
  spoolFailure,
  unavailable,
} from "./_failures.ts";
import { HeaderDeadline } from "./_deadline.ts";
import {
  ConnectError,
  CutResponseError,
  IDEMPOTENT,
  NoResponseError,
  type Transport,
  type UpstreamResponse,
} from "./_transport.ts";
import {
  type BodyLimits,
  prepareBody,
  removeSpooled,
  type RequestBody,
  SpoolError,
} from "./_request_writer.ts";
import type { RequestContext } from "./context.ts";

/** The proxy's settings a config reload may change, with their defaults resolved. */
export interface ProxySettings {
  requestBufferBytes: number;
  maxBodyBytes: number;
  readTimeoutMs: number;
  retryWindowMs: number;
  bodyTempDir: string | undefined;
  maxWebSocketMessageBytes: number;
}

/** Options for {@linkcode HttpForwarder}. */
export interface HttpForwarderOptions {
  /** The connections to workers. */
  transport: Transport;
  /** Read on every request: a reload changes them in place. */
  settings: Readonly<ProxySettings>;
  /** Logger for worker and client failures. */
  logger: Logger;
  /** Builds every error answer. */
  onError: ErrorHandler;
}

/** Pause between two tries of a request that failed because its instance died. */
const RETRY_PAUSE_MS = 25;

const NO_BODY: RequestBody = { kind: "none" };

/** A worker origin split for `Deno.connect`. */
interface Origin {
  hostname: string;
  port: number;
  key: string;
}

/** Forwards plain HTTP requests (not WebSocket upgrades) to worker instances. */
export class HttpForwarder {
  #transport: Transport;
  #settings: Readonly<ProxySettings>;
  #logger: Logger;
  #onError: ErrorHandler;
  #origins = new Map<string, Origin>();

  constructor(options: HttpForwarderOptions) {
    this.#transport = options.transport;
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#onError = options.onError;
  }

  /**
   * Forwards `req` to an instance of `ctx.upstream` and answers with the
   * worker's response, or with `onError`'s answer when it cannot.
   *
   * @param ctx The request's context: `upstream`, `target`, `fields` and
   *   `forwarding` set.
   */
  async forward(req: Request, ctx: RequestContext): Promise<Response> {
    const fields = ctx.fields!;
    const upstream = ctx.upstream!;
    const lengthField = fields.contentLength;
    const contentLength = lengthField === null ? -1 : Number(lengthField);
    const logger = this.#logger;
    if (
      req.body === null &&
      (contentLength > 0 || fields.transferEncoding !== null)
    ) {
      return this.#onError(req, bodyRefused({ req, logger, ctx }));
    }
    const settings = this.#settings;
    const limits: BodyLimits = {
      bufferBytes: settings.requestBufferBytes,
      maxBodyBytes: settings.maxBodyBytes,
      readTimeoutMs: upstream.readTimeoutMs ?? settings.readTimeoutMs,
      tempDir: settings.bodyTempDir,
    };
    let body: RequestBody;
    try {
      // No await for the usual body-less request: each is a turn of the microtask queue.
      body = req.body === null
        ? NO_BODY
        : await prepareBody(req, contentLength, limits);
    } catch (err) {
      const failure = { req, logger, ctx };
      return this.#onError(
        req,
        err instanceof SpoolError
          ? spoolFailure(err, failure)
          : clientFailure(err, failure),
      );
    }
    if (body.kind !== "file") return this.#send(req, ctx, body, limits);
    // A spooled body lives until the worker's answer head is in (or the
    // request failed): what the upload still reads has the file open.
    const spooled = body.path;
    try {
      return await this.#send(req, ctx, body, limits);
    } finally {
      await removeSpooled(spooled).catch((err) =>
        logger.error("spooled body not removed", {
          path: spooled,
          error: describeError(err),
          request_id: ctx.requestId,
        })
      );
    }
  }

  /** Closes idle keep-alive connections to workers. */
  close(): void {
    this.#transport.close();
  }

  async #send(
    req: Request,
    ctx: RequestContext,
    body: RequestBody,
    limits: BodyLimits,
  ): Promise<Response> {
    const upstream = ctx.upstream!;
    const fields = ctx.fields!;
    const { requestId, clientIp, host, trusted } = ctx.forwarding!;
    const lengthField = fields.contentLength;
    let head = requestHead(fields, {
      method: req.method,
      target: ctx.target,
      host,
      clientIp,
      trusted,
      requestId,
    });
    // A body-less request keeps the length it announced (e.g. a 0-byte POST).
    if (body.kind === "none" && lengthField !== null) {
      head += `content-length: ${lengthField}\r\n`;
    }
    const canResend = body.kind !== "stream"; // A spooled file is read again.
    const idempotent = IDEMPOTENT.has(req.method);
    let retryUntil = 0;
    let cutBefore = false;

    /** Starts the retry window at the first failure; true while it lasts. */
    const mayRetry = () => {
      const now = performance.now();
      if (retryUntil === 0) {
        retryUntil = now +
          (upstream.retryWindowMs ?? this.#settings.retryWindowMs);
      }
      return now < retryUntil && !req.signal.aborted;
    };

    for (;;) {
      let instance = upstream.acquire();
      if (instance === undefined) {
        // No healthy instance: wait for a replacement, like Caddy's lb_try_duration.
        if (!mayRetry()) return this.#onError(req, unavailable(ctx));
        if (upstream.acquireWithin === undefined) {
          await pause(RETRY_PAUSE_MS);
          continue;
        }
        instance = await upstream.acquireWithin(
          Math.max(0, retryUntil - performance.now()),
          req.signal,
        );
        if (instance === undefined) {
          return this.#onError(
            req,
            req.signal.aborted ? clientClosed(ctx) : unavailable(ctx),
          );
        }
      }
      const origin = this.#originOf(instance.origin);
      const deadline = new HeaderDeadline(req, upstream.writeTimeoutMs);
      let res: UpstreamResponse;
      try {
        res = await this.#transport.send({
          hostname: origin.hostname,
          port: origin.port,
          origin: origin.key,
          method: req.method,
          head,
          body,
          limits,
          deadline,
          idleTimeoutMs: upstream.idleTimeoutMs,
        });
      } catch (err) {
        deadline.clear();
        instance.release();
        const resendable = err instanceof ConnectError ||
          (err instanceof NoResponseError && canResend &&
            (idempotent || !err.written)) ||
          // Once: a worker that cuts every answer short gets its 502 at once.
          (err instanceof CutResponseError && canResend && idempotent &&
            !cutBefore);
        if (err instanceof CutResponseError) cutBefore = true;
        if (resendable && !deadline.fired && mayRetry()) {
          this.#logger.debug("worker request resent", {
            worker: upstream.name,
            origin: instance.origin,
            error: describeError(err),
            request_id: requestId,
          });
          await pause(RETRY_PAUSE_MS);
          continue;
        }
        const failure = { req, logger: this.#logger, ctx };
        return this.#onError(
          req,
          isClientFailure(err)
            ? clientFailure(err, failure)
            : exchangeFailure(err, {
              ...failure,
              deadline,
              origin: instance.origin,
            }),
        );
      }
      return respond(res, ctx, instance);
    }
  }

  #originOf(url: string): Origin {
    let origin = this.#origins.get(url);
    if (origin === undefined) {
      const parsed = new URL(url);
      origin = {
        hostname: parsed.hostname.replace(/^\[|\]$/g, ""),
        port: Number(parsed.port || "80"),
        key: parsed.host,
      };
      if (this.#origins.size > 4096) this.#origins.clear();
      this.#origins.set(url, origin);
    }
    return origin;
  }
}

/**
 * The client's answer from the worker's: its header pairs (recorded on the
 * context for the stages after the proxy) and its body, the instance
 * released once the body has been sent, has failed or was cancelled.
 */
function respond(
  res: UpstreamResponse,
  ctx: RequestContext,
  instance: UpstreamTarget,
): Response {
  const { head } = res;
  let body = res.body;
  if (body instanceof ReadableStream) {
    const completed = ctx.info.completed;
    if (completed !== undefined) {
      // Deno.serve settles `completed` once the body is fully sent or
      // failed, so the worker's stream is handed over as is.
      const release = () => instance.release();
      completed.then(release, release);
    } else {
      body = releasingBody(body, () => instance.release());
    }
  } else {
    instance.release();
  }
  // No statusText: Deno.serve sends the standard reason phrase whatever it
  // is given (clients ignore it, RFC 9112 §4), and checking the worker's
  // costs time on every answer.
  // A body of bytes: Deno.serve writes its length, so the worker's
  // Content-Length is not passed on to be checked and copied once more.
  const length = body instanceof Uint8Array ? body.length : -1;
  let headers: HeaderPairs;
  let answer: Response;
  try {
    headers = downstreamPairs(head.headers, length >= 0);
    answer = new Response(body, { status: head.status, headers });
  } finally {
    // The Response holds its own copy now: the connection may take the next request.
    res.release?.();
  }
  ctx.answered(answer, headers, length);
  return answer;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
