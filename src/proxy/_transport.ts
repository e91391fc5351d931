/**
 * Folder-private: the one HTTP/1.1 transport from the proxy to workers. It
 * owns framing both ways for every request (with or without a body): it
 * writes the head and body (`_request_writer.ts`), reads the response head
 * (`_response_head.ts`) while an upload is still going (an early answer wins
 * and the connection is then closed), skips 1xx interim answers, and reads
 * the body by its framing (`_response_body.ts`) without decoding it. Idle
 * connections live in a keep-alive pool (`_conn.ts`); a reused connection the
 * worker had closed is retried once on a fresh one, by Go's Transport rule:
 * when nothing was written, or the request is idempotent and replayable. Its
 * errors, which say what may be resent, are in `_upstream_errors.ts`.
 */
import { Conn, Pool } from "./_conn.ts";
import { DEFAULT_UPSTREAM_IDLE_MS } from "../config/defaults.ts";
import type { HeaderDeadline } from "./_deadline.ts";
import {
  BadResponseError,
  bodyFraming,
  findHeadEnd,
  MAX_HEAD_BYTES,
  parseResponseHead,
  type ResponseHead,
} from "./_response_head.ts";
import {
  type BodyReader,
  bufferedChunked,
  chunkedReader,
  closedInside,
  closeReader,
  lengthReader,
} from "./_response_body.ts";
import {
  asTypeError,
  ConnectError,
  CutResponseError,
  headFailure,
  NoResponseError,
} from "./_upstream_errors.ts";
import {
  type BodyLimits,
  framingLine,
  pumpBody,
  pumpFile,
  type RequestBody,
  UpstreamWriteError,
} from "./_request_writer.ts";

export {
  ConnectError,
  CutResponseError,
  NoResponseError,
} from "./_upstream_errors.ts";

/** Options of {@linkcode Transport}. */
export interface TransportOptions {
  /** Idle keep-alive connections kept per worker origin. Default 256. */
  maxIdlePerOrigin?: number;
  /** An idle connection older than this is closed, not reused. Default 30000 ms. */
  idleTimeoutMs?: number;
  /** Response bodies with a Content-Length up to this size are read whole (no stream). Default 65536. */
  bufferResponseBytes?: number;
}

/** One request for a worker, head already serialised. */
export interface UpstreamRequest {
  hostname: string;
  port: number;
  /** `host:port`, the pool key. */
  origin: string;
  method: string;
  /** Request line and header lines, each ending in CRLF, without framing fields or the final CRLF. */
  head: string;
  body: RequestBody;
  limits: BodyLimits;
  deadline: HeaderDeadline;
  /** How long the connection may then idle in the pool. Default: the transport's `idleTimeoutMs`. */
  idleTimeoutMs?: number | undefined;
}

/** A worker's answer: its head and its body as bytes, a stream, or none. */
export interface UpstreamResponse {
  head: ResponseHead;
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null;
  /**
   * Set when `body` is a view into the connection's read buffer, lent rather
   * than copied: the bytes stay valid until this is called, which returns
   * the connection to the pool (its next answer overwrites them). Call it
   * exactly once, as soon as the bytes are copied — `new Response(body)`
   * copies a body of bytes (Fetch's "extract a body").
   */
  release?: () => void;
}

/** Methods that may be sent twice (RFC 9110 §9.2.2). */
export const IDEMPOTENT: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

/** The HTTP/1.1 client of the proxy (see the module doc). */
export class Transport {
  readonly #pool: Pool;
  readonly #bufferBytes: number;

  constructor(options: TransportOptions = {}) {
    const {
      maxIdlePerOrigin = 256,
      idleTimeoutMs = DEFAULT_UPSTREAM_IDLE_MS,
      bufferResponseBytes = 65536,
    } = options;
    this.#pool = new Pool({ maxIdlePerOrigin, idleTimeoutMs });
    this.#bufferBytes = bufferResponseBytes;
  }

  /** Closes every idle connection. */
  close(): void {
    this.#pool.closeAll();
  }

  /**
   * Sends one request and returns the worker's response once its head has
   * arrived.
   *
   * @throws {ConnectError} When no connection could be made.
   * @throws {NoResponseError} When the worker closed before answering.
   * @throws {BadResponseError} For a malformed response.
   * @throws The body errors of `_request_writer.ts` (client stalled, body too large, client gone).
   */
  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    const replayable = req.body.kind !== "stream";
    const idempotent = IDEMPOTENT.has(req.method);
    const headText = req.head + framingLine(req.body) + "\r\n";
    for (let attempt = 0;; attempt++) {
      let conn = this.#pool.take(req.origin);
      const reused = conn !== undefined;
      if (conn === undefined) {
        // Bounded by the deadline too: a worker whose accept queue is full
        // leaves a connect waiting on SYN retries for minutes.
        const aborter = new AbortController();
        req.deadline.onAbort(() => aborter.abort());
        conn = await connect(req.hostname, req.port, aborter.signal);
      }
      const c = conn;
      req.deadline.onAbort(() => c.close());
      try {
        return await this.#exchange(c, req, headText, reused);
      } catch (err) {
        c.close();
        if (
          attempt === 0 && err instanceof NoResponseError && err.reused &&
          replayable && (idempotent || !err.written) && !req.deadline.fired
        ) {
          continue; // A keep-alive connection the worker had closed: once more, fresh.
        }
        throw err;
      }
    }
  }

  async #exchange(
    conn: Conn,
    req: UpstreamRequest,
    headText: string,
    reused: boolean,
  ): Promise<UpstreamResponse> {
    const { body, deadline, method } = req;
    // The head is written and read here, not in nested async calls: each
    // costs the hot path a promise and a turn of the microtask queue.
    const bytes = body.kind === "bytes" ? body.bytes : undefined;
    try {
      const packed = conn.packHead(headText, bytes);
      if (packed === undefined) await conn.writeHead(headText, bytes);
      else {
        const n = await conn.tcp.write(packed);
        if (n < packed.length) await conn.write(packed.subarray(n));
      }
    } catch (err) {
      throw new NoResponseError(
        "Writing the request to the worker failed",
        false,
        reused,
        { cause: err },
      );
    }
    let uploaded = true;
    let stop = false;
    let uploadFailure: unknown;
    if (body.kind === "stream" || body.kind === "file") {
      uploaded = false;
      deadline.uploading();
      const stopped = () => stop;
      const pumped = body.kind === "file"
        ? pumpFile(conn, body, { stopped })
        : pumpBody(conn, body, { limits: req.limits, stopped });
      pumped.then(() => {
        uploaded = true;
        deadline.uploaded();
      }, (err) => {
        uploadFailure = err;
        deadline.uploaded();
        // The client's failure ends the exchange; a failed write to the
        // worker may still be followed by its (early) answer.
        if (!(err instanceof UpstreamWriteError)) conn.close();
      });
    }
    let head: ResponseHead | undefined;
    try {
      // The final head, 1xx interim answers (100 Continue, 103) skipped.
      let received = false;
      head = takeHead(conn, 0);
      while (head === undefined) {
        // The bytes already scanned hold no head end, but for its first two.
        const skip = Math.max(0, conn.end - conn.start - 2);
        let more: boolean;
        try {
          more = conn.filled(await conn.read());
        } catch (err) {
          throw headFailure({ received, reused, cause: err });
        }
        if (!more) throw headFailure({ received, reused });
        received = true;
        head = takeHead(conn, skip);
      }
    } catch (err) {
      if (
        uploadFailure !== undefined &&
        !(uploadFailure instanceof UpstreamWriteError)
      ) throw uploadFailure;
      throw err;
    }
    deadline.clear();
    if (!uploaded) {
      // An early answer: the rest of the upload is discarded.
      stop = true;
      if (body.kind === "stream") body.reader.cancel().catch(() => {});
    }
    if (head.status === 101) {
      throw new BadResponseError(
        "Worker switched protocols on a plain request",
      );
    }
    const reusable = head.keepAlive && uploaded;
    const done = (complete: boolean) => {
      if (complete && reusable) {
        this.#pool.put(req.origin, conn, req.idleTimeoutMs);
      } else conn.close();
    };
    const framing = bodyFraming(head, method);
    if (framing === "none") {
      done(true);
      return { head, body: null };
    }
    const length = head.contentLength;
    if (framing === "length" && length <= this.#bufferBytes) {
      try {
        while (conn.end - conn.start < length) {
          if (!conn.filled(await conn.read())) throw closedInside("the body");
        }
      } catch (err) {
        done(false);
        throw new CutResponseError(asTypeError(err).message, { cause: err });
      }
      // Lent: the proxy's Response copies the bytes, so a copy here would
      // be a second one (an ArrayBuffer allocated and freed per answer).
      const bytes = conn.buf.subarray(conn.start, conn.start + length);
      conn.start += length;
      return { head, body: bytes, release: () => done(true) };
    }
    if (framing === "chunked") {
      // Whole already (the usual small answer of a worker that does not send
      // a length): sent with one, as bytes, like a buffered Content-Length body.
      const whole = bufferedChunked(conn, this.#bufferBytes);
      if (whole !== null) {
        done(true);
        head.headers.push(["content-length", String(whole.length)]);
        return { head, body: whole };
      }
    }
    const next: BodyReader = framing === "chunked"
      ? chunkedReader(conn)
      : framing === "length"
      ? lengthReader(conn, length)
      : closeReader(conn);
    let finished = false;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let chunk: Uint8Array | null;
        try {
          chunk = await next();
        } catch (err) {
          finished = true;
          done(false);
          controller.error(err);
          return;
        }
        if (chunk === null) {
          finished = true;
          done(framing !== "close");
          controller.close();
        } else {
          controller.enqueue(chunk);
        }
      },
      cancel() {
        if (!finished) {
          finished = true;
          done(false);
        }
      },
    }, { highWaterMark: 0 });
    return { head, body: stream };
  }
}

async function connect(
  hostname: string,
  port: number,
  signal: AbortSignal,
): Promise<Conn> {
  try {
    const tcp = await Deno.connect({ hostname, port, signal });
    tcp.setNoDelay(true);
    return new Conn(tcp);
  } catch (err) {
    throw new ConnectError(
      `Cannot connect to the worker at "${hostname}:${port}"`,
      { cause: err },
    );
  }
}

/**
 * Takes a whole response head from the buffer, skipping 1xx interim answers
 * (100 Continue, 103 Early Hints); undefined until the final one is whole.
 * The first `skip` buffered bytes are known to hold no head end.
 *
 * @throws {BadResponseError} For a head over {@linkcode MAX_HEAD_BYTES} or a malformed one.
 */
function takeHead(conn: Conn, skip: number): ResponseHead | undefined {
  for (;;) {
    const end = findHeadEnd(conn.buf, conn.start + skip, conn.end);
    if (
      (end < 0 ? conn.end : end) - conn.start > MAX_HEAD_BYTES
    ) {
      throw new BadResponseError(
        `Response head from the worker is over ${MAX_HEAD_BYTES} bytes`,
      );
    }
    if (end < 0) return undefined;
    const head = parseResponseHead(conn.buf.subarray(conn.start, end));
    conn.start = end;
    if (head.status >= 200 || head.status === 101) return head;
    skip = 0;
  }
}
