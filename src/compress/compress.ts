import zlib from "node:zlib";
import { Duplex } from "node:stream";
import { within } from "../timeouts.ts";
import {
  createTypeMatcher,
  type Encoding,
  negotiateEncoding,
} from "./_negotiate.ts";

/** Content types compressed by default: text, JS, JSON, XML, SVG and wasm. */
export const DEFAULT_COMPRESSIBLE_TYPES: readonly string[] = [
  "text/*",
  "application/javascript",
  "application/json",
  "application/*+json",
  "application/xml",
  "application/*+xml",
  "image/svg+xml",
  "application/wasm",
];

/** Answers shorter than this are not compressed by default (nginx's `gzip_min_length` is 20; 1 KiB saves a round trip's worth). */
export const DEFAULT_MIN_BYTES = 1024;

const { constants } = zlib;

/**
 * Compresses bytes once, at the highest settings that stay fast on files up
 * to a few hundred KiB (brotli quality 9, gzip level 9). Used for the static
 * cache, where the result is kept and served many times.
 */
export function compressBytes(
  bytes: Uint8Array,
  encoding: Encoding,
): Promise<Uint8Array<ArrayBuffer>> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, out: Uint8Array) =>
      err ? reject(err) : resolve(new Uint8Array(out));
    if (encoding === "br") {
      zlib.brotliCompress(bytes, {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: 9,
          [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
        },
      }, done);
    } else {
      zlib.gzip(bytes, { level: 9 }, done);
    }
  });
}

/** A body with no bytes and no length: what a HEAD answer of unknown length carries. */
export function emptyStream(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (controller) => controller.close() });
}

/** Options for {@linkcode compressStream}. */
export interface CompressStreamOptions {
  /**
   * Flush after every chunk, so a streamed answer (a page rendered in parts)
   * reaches the client as it is produced, at some cost in ratio. Default false.
   */
  flushEachChunk?: boolean;
}

/**
 * Compresses a byte stream with `node:zlib` (brotli quality 4, gzip level 6:
 * fast enough per request). Cancelling the result (a client that leaves)
 * cancels `body`.
 */
export function compressStream(
  body: ReadableStream<Uint8Array>,
  encoding: Encoding,
  options: CompressStreamOptions = {},
): ReadableStream<Uint8Array> {
  const { flushEachChunk = false } = options;
  const stream = encoding === "br"
    ? zlib.createBrotliCompress({
      ...(flushEachChunk ? { flush: constants.BROTLI_OPERATION_FLUSH } : {}),
      params: { [constants.BROTLI_PARAM_QUALITY]: 4 },
    })
    : zlib.createGzip({
      level: 6,
      ...(flushEachChunk ? { flush: constants.Z_SYNC_FLUSH } : {}),
    });
  const { readable, writable } = Duplex.toWeb(stream);
  // A failed or cancelled pipe is the client or the worker going away; the
  // readable side reports it to whoever consumes the answer.
  body.pipeTo(writable as WritableStream<Uint8Array>).catch(() => {});
  return readable as ReadableStream<Uint8Array>;
}

/** Options for {@linkcode createCompressor} (`server.compression.*`). */
export interface CompressorOptions {
  /** Compress at all. Default true. */
  enabled?: boolean;
  /** Answers with a smaller `Content-Length` stay as they are. Default 1024. */
  minBytes?: number;
  /** Content-Type patterns (`text/*`, `application/json`). Default {@linkcode DEFAULT_COMPRESSIBLE_TYPES}. */
  types?: readonly string[];
}

/** Transforms an answer into its compressed form when the client and the answer allow it. */
export type Compressor = (
  req: Request,
  res: Response,
  header?: (name: string) => string | null,
) => Response | Promise<Response>;

/**
 * How long an answer of unknown length may take to show it reaches
 * `minBytes` (checked on the shared sweep of `timeouts.ts`: up to one
 * `TICK_MS` more). No timer per answer: see `timeouts.ts`.
 */
const PEEK_MS = 20;
/** What a peek past `PEEK_MS` rejects with (never shown). */
const LATE = new Error("Peek window over");
const late = () => LATE;

type Peeked = {
  chunks: Uint8Array[];
  size: number;
  done: boolean;
  reader: ReadableStreamDefaultReader<Uint8Array>;
  pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
};

/**
 * Reads an answer of unknown length until it has `minBytes`, ends, or
 * `PEEK_MS` pass without either: a short answer (an error page) then keeps
 * its exact length, and a slow stream is not held back.
 */
async function peek(
  body: ReadableStream<Uint8Array>,
  minBytes: number,
): Promise<Peeked> {
  const reader = body.getReader();
  const out: Peeked = {
    chunks: [],
    size: 0,
    done: false,
    reader,
    pending: undefined,
  };
  const until = performance.now() + PEEK_MS;
  while (out.size < minBytes) {
    const left = until - performance.now();
    if (left <= 0) break;
    out.pending ??= reader.read();
    let r: ReadableStreamReadResult<Uint8Array>;
    try {
      r = await within(out.pending, { ms: left, onTimeout: late });
    } catch (err) {
      if (err === LATE) break;
      throw err;
    }
    out.pending = undefined;
    if (r.done) {
      out.done = true;
      break;
    }
    out.chunks.push(r.value);
    out.size += r.value.length;
  }
  return out;
}

/** The peeked chunks, then the rest of the body. */
function rejoin(peeked: Peeked): ReadableStream<Uint8Array> {
  const { chunks, reader } = peeked;
  let pending = peeked.pending;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = chunks.shift();
      if (chunk !== undefined) return controller.enqueue(chunk);
      const r = await (pending ?? reader.read());
      pending = undefined;
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

function concat(chunks: Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const NO_BODY_STATUS = new Set([204, 206, 304]);

function appendVary(headers: Headers): void {
  const vary = headers.get("vary");
  if (vary === null) headers.set("vary", "Accept-Encoding");
  else if (!/(^|,)\s*(accept-encoding|\*)\s*(,|$)/i.test(vary)) {
    headers.set("vary", `${vary}, Accept-Encoding`);
  }
}

/**
 * Creates the compression stage for workers' answers (nginx's `gzip on`,
 * Caddy's `encode`): an answer of a listed type, not already encoded, of at
 * least `minBytes` (or of unknown length) is compressed with br or gzip as
 * the client's `Accept-Encoding` prefers, streamed. Never compressed: SSE
 * (`text/event-stream`), partial content (206, `Content-Range`),
 * `Cache-Control: no-transform`, 1xx/204/304. A compressible answer gets
 * `Vary: Accept-Encoding` whether it was compressed or not; a strong ETag
 * becomes weak, as the bytes changed (nginx does the same). An answer of
 * unknown length is flushed chunk by chunk so streaming pages still stream.
 * HEAD answers get the same headers as the GET would.
 *
 * @throws {RangeError} When `minBytes` is not a non-negative integer.
 * @throws {TypeError} When a type pattern is malformed.
 *
 * @example
 * ```ts
 * const compress = createCompressor({ minBytes: 1024 });
 * Deno.serve(async (req) => compress(req, await fetch("http://127.0.0.1:9000" + new URL(req.url).pathname)));
 * ```
 */
export function createCompressor(options: CompressorOptions = {}): Compressor {
  const {
    enabled = true,
    minBytes = DEFAULT_MIN_BYTES,
    types = DEFAULT_COMPRESSIBLE_TYPES,
  } = options;
  if (!Number.isSafeInteger(minBytes) || minBytes < 0) {
    throw new RangeError(
      `Compression min bytes "${minBytes}" must be a non-negative integer`,
    );
  }
  const compressible = createTypeMatcher(types);
  return function compress(
    req: Request,
    res: Response,
    header = (name: string) => res.headers.get(name),
  ): Response | Promise<Response> {
    if (!enabled) return res;
    const status = res.status;
    if (status < 200 || NO_BODY_STATUS.has(status)) return res;
    const head = req.method === "HEAD";
    // The length first: most small answers stop here, before any type test.
    const lengthHeader = header("content-length");
    const length = lengthHeader === null ? -1 : Number(lengthHeader);
    if (length >= 0 && length < minBytes) return res;
    const type = header("content-type");
    if (!compressible(type) || /^\s*text\/event-stream/i.test(type ?? "")) {
      return res;
    }
    if (
      header("content-encoding") !== null || header("content-range") !== null
    ) return res;
    if (/(^|,)\s*no-transform\s*(,|$)/i.test(header("cache-control") ?? "")) {
      return res;
    }
    // No coding accepted: the answer goes as it is. Before `res.body` is
    // read: the getter turns a byte body into a stream, which costs
    // Deno.serve its fast path and the body its length.
    const encoding = negotiateEncoding(req.headers.get("accept-encoding"));
    if (encoding === null) return withVary(res);
    if (!head && res.body === null) return res;
    if (head || res.body === null || length >= 0) {
      return encoded(res, encoding, res.body, head, length < 0);
    }
    return peek(res.body, minBytes).then((peeked) => {
      if (peeked.done && peeked.size < minBytes) {
        // Short after all: sent as it is, with its exact length.
        return withVary(
          new Response(concat(peeked.chunks, peeked.size), {
            status,
            statusText: res.statusText,
            headers: res.headers,
          }),
        );
      }
      return encoded(res, encoding, rejoin(peeked), false, true);
    });
  };
}

/** The answer with `Vary: Accept-Encoding`, its body untouched. */
function withVary(res: Response): Response {
  try {
    appendVary(res.headers);
    return res;
  } catch {
    // Immutable headers (a fetch Response): copy them.
    const headers = new Headers(res.headers);
    appendVary(headers);
    return new Response(res.body, {
      status: res.status,
      statusText: res.statusText,
      headers,
    });
  }
}

/** The answer compressed with `encoding` (flushed chunk by chunk when `streaming`: its length is unknown). */
function encoded(
  res: Response,
  encoding: Encoding,
  body: ReadableStream<Uint8Array> | null,
  head: boolean,
  streaming: boolean,
): Response {
  const headers = new Headers(res.headers);
  appendVary(headers);
  headers.set("content-encoding", encoding);
  headers.delete("content-length");
  const etag = headers.get("etag");
  if (etag !== null && !etag.startsWith("W/")) headers.set("etag", `W/${etag}`);
  // A HEAD answer of unknown length: an empty stream, or Deno would add `Content-Length: 0`.
  const out = head || body === null
    ? emptyStream()
    : compressStream(body, encoding, { flushEachChunk: streaming });
  return new Response(out, {
    status: res.status,
    statusText: res.statusText,
    headers,
  });
}
