/**
 * Folder-private: how a client's request body goes to a worker. A body with a
 * `Content-Length` keeps it and is streamed (small ones are read first so
 * head and body leave in one write); a chunked body is buffered up to
 * `request_buffer_bytes` and sent with a `Content-Length`, as nginx does, and
 * streams chunked past that. `max_body_bytes` and the client read timeout are
 * enforced here.
 */
import type { Conn } from "./_conn.ts";
import { within } from "../timeouts.ts";

/** The client sent nothing for the read timeout (answered 408). */
export class ClientTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`Client sent no body bytes for ${timeoutMs} ms`);
  }
}

/** The body is larger than `server.max_body_bytes` (answered 413). */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`Request body is larger than ${limit} bytes`);
  }
}

/** Reading the client's body failed: the client went away mid-upload. */
export class ClientBodyError extends Error {}

/** Writing to the worker failed mid-upload (it may have answered early and closed). */
export class UpstreamWriteError extends Error {}

/** Limits on reading a client's body. */
export interface BodyLimits {
  /** A chunked body up to this many bytes is buffered and sent with a Content-Length. */
  bufferBytes: number;
  /** A larger body is refused with 413; 0 = no limit. */
  maxBodyBytes: number;
  /** The client may be silent this long mid-body before a 408. */
  readTimeoutMs: number;
}

/** A body with a Content-Length up to this size is read before the head is written. */
const SMALL_BODY_BYTES = 16 * 1024;

/** A request body, ready to write. */
export type RequestBody =
  | { kind: "none" }
  | { kind: "bytes"; bytes: Uint8Array }
  | {
    kind: "stream";
    reader: ReadableStreamDefaultReader<Uint8Array>;
    /** The Content-Length, or -1 to send chunked. */
    length: number;
    /** Bytes already read from the client, sent first. */
    first: Uint8Array[];
  };

const encoder = new TextEncoder();
const CHUNKED_END = encoder.encode("0\r\n\r\n");

/** One read of the client's body, failing with {@linkcode ClientTimeoutError} after `ms` of silence. */
export function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  const read = reader.read().catch((err) => {
    throw new ClientBodyError("Client body ended early", { cause: err });
  });
  return within(read, ms, () => new ClientTimeoutError(ms));
}

/**
 * Reads as much of the client's body as the framing rules need before
 * anything is written to a worker.
 *
 * @param body The client's body stream, or null.
 * @param contentLength The client's Content-Length, or -1 when it sent chunked.
 * @throws {BodyTooLargeError} When the body is over `maxBodyBytes`.
 * @throws {ClientTimeoutError} When the client stalls.
 */
export async function prepareBody(
  req: Request,
  contentLength: number,
  limits: BodyLimits,
): Promise<RequestBody> {
  const body = req.body;
  if (body === null) return { kind: "none" };
  const { maxBodyBytes, readTimeoutMs } = limits;
  if (maxBodyBytes > 0 && contentLength > maxBodyBytes) {
    // Refused before anything reaches a worker; cancelled, as below, so
    // the 413 is the one that says `Connection: close` (see _failures.ts).
    body.cancel().catch(() => {});
    throw new BodyTooLargeError(maxBodyBytes);
  }
  if (contentLength >= 0 && contentLength <= SMALL_BODY_BYTES) {
    // One native read for a small body (no stream reads); the read timeout
    // then bounds the whole of it.
    return { kind: "bytes", bytes: await bytesWithin(req, readTimeoutMs) };
  }
  const reader = body.getReader();
  if (contentLength >= 0) {
    return { kind: "stream", reader, length: contentLength, first: [] };
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await readWithin(reader, readTimeoutMs);
    if (done) break;
    total += value.length;
    if (maxBodyBytes > 0 && total > maxBodyBytes) {
      reader.cancel().catch(() => {});
      throw new BodyTooLargeError(maxBodyBytes);
    }
    chunks.push(value);
    if (total > limits.bufferBytes) {
      return { kind: "stream", reader, length: -1, first: chunks };
    }
  }
  return { kind: "bytes", bytes: concat(chunks, total) };
}

/** `req.bytes()`, failing with {@linkcode ClientTimeoutError} after `ms`. */
function bytesWithin(req: Request, ms: number): Promise<Uint8Array> {
  const read = req.bytes().catch((err) => {
    throw new ClientBodyError("Client body ended early", { cause: err });
  });
  return within(read, ms, () => new ClientTimeoutError(ms));
}

/** The framing header line for `body`, ending in CRLF, or "" for none. */
export function framingLine(body: RequestBody): string {
  if (body.kind === "bytes") return `content-length: ${body.bytes.length}\r\n`;
  if (body.kind === "stream") {
    return body.length >= 0
      ? `content-length: ${body.length}\r\n`
      : "transfer-encoding: chunked\r\n";
  }
  return "";
}

/**
 * Writes the rest of a streamed body to the worker, calling `progress` after
 * every chunk. Rejects with {@linkcode ClientTimeoutError},
 * {@linkcode BodyTooLargeError}, {@linkcode ClientBodyError} or
 * {@linkcode UpstreamWriteError}; `stopped()` true ends it quietly (the
 * worker answered early).
 */
export async function pumpBody(
  conn: Conn,
  body: Extract<RequestBody, { kind: "stream" }>,
  limits: BodyLimits,
  progress: () => void,
  stopped: () => boolean,
): Promise<void> {
  const chunked = body.length < 0;
  let total = 0;
  const send = async (bytes: Uint8Array) => {
    try {
      await conn.write(bytes);
    } catch (err) {
      throw new UpstreamWriteError("Writing the body to the worker failed", {
        cause: err,
      });
    }
  };
  const frame = (chunk: Uint8Array) => chunked ? chunkFrame(chunk) : chunk;
  for (const chunk of body.first) {
    total += chunk.length;
    await send(frame(chunk));
  }
  for (;;) {
    if (stopped()) return;
    const { done, value } = await readWithin(body.reader, limits.readTimeoutMs);
    if (stopped()) return;
    if (done) break;
    if (value.length === 0) continue; // An empty chunk would end a chunked body.
    total += value.length;
    if (limits.maxBodyBytes > 0 && total > limits.maxBodyBytes) {
      body.reader.cancel().catch(() => {});
      throw new BodyTooLargeError(limits.maxBodyBytes);
    }
    await send(frame(value));
    progress();
  }
  if (chunked) await send(CHUNKED_END);
}

/** One chunk of a chunked body: size line, bytes, CRLF, in one buffer (one write). */
function chunkFrame(chunk: Uint8Array): Uint8Array {
  const size = encoder.encode(chunk.length.toString(16) + "\r\n");
  const out = new Uint8Array(size.length + chunk.length + 2);
  out.set(size);
  out.set(chunk, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
