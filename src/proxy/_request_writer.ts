/**
 * Folder-private: how a client's request body goes to a worker. A body with a
 * `Content-Length` keeps it and is streamed (small ones are read first so
 * head and body leave in one write); a chunked body is buffered up to
 * `request_buffer_bytes` and sent with a `Content-Length`, as nginx does;
 * past that it is spooled to a temporary file (nginx's
 * `client_body_temp_path`) and sent with its length too, so no worker ever
 * receives a body whose length it cannot know. `max_body_bytes` and the
 * client read timeout are enforced here.
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

/**
 * The client's chunked framing was malformed (answered 400). Deno.serve
 * reports it as a failed body read when the bad bytes arrive after the
 * request head was handed to us; see docs/contract.md for when it decides
 * alone.
 */
export class MalformedBodyError extends ClientBodyError {}

/** The spool file could not be created or written (`server.body_temp_dir` missing, full or read-only). */
export class SpoolError extends Error {}

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
  /** Folder of spooled bodies (`server.body_temp_dir`); undefined = the OS temp dir. */
  tempDir?: string | undefined;
}

/**
 * Options for {@linkcode prepareBody}: the request's {@linkcode BodyLimits}
 * themselves, the object the transport reads later too, so a body costs no
 * options object of its own.
 */
export type PrepareBodyOptions = BodyLimits;

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
  }
  | {
    kind: "file";
    /** The spooled body; the proxy removes it when the request ends. */
    path: string;
    length: number;
  };

const encoder = new TextEncoder();
const CHUNKED_END = encoder.encode("0\r\n\r\n");

/** One read of the client's body, failing with {@linkcode ClientTimeoutError} after `ms` of silence. */
export function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  const read = reader.read().catch((err) => {
    throw bodyError(err);
  });
  return within(read, { ms, onTimeout: () => new ClientTimeoutError(ms) });
}

/**
 * The error for a failed read of the client's body: hyper's parse errors
 * ("invalid HTTP/1 request") are malformed framing, anything else the
 * client going away.
 */
function bodyError(err: unknown): ClientBodyError {
  return /invalid HTTP/i.test(String((err as Error)?.message ?? err))
    ? new MalformedBodyError("Malformed chunked request body", { cause: err })
    : new ClientBodyError("Client body ended early", { cause: err });
}

/**
 * Reads as much of the client's body as the framing rules need before
 * anything is written to a worker.
 *
 * @param req The client's request; its body stream is read, or null.
 * @param contentLength The client's Content-Length, or -1 when it sent chunked.
 * @param options The request's body limits.
 * @throws {BodyTooLargeError} When the body is over `maxBodyBytes`.
 * @throws {ClientTimeoutError} When the client stalls.
 */
export async function prepareBody(
  req: Request,
  contentLength: number,
  options: PrepareBodyOptions,
): Promise<RequestBody> {
  const body = req.body;
  if (body === null) return { kind: "none" };
  const { maxBodyBytes, readTimeoutMs, bufferBytes } = options;
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
  const read = { total: 0 };
  for (;;) {
    const value = await nextChunk(reader, read, options);
    if (value === undefined) break;
    chunks.push(value);
    if (read.total > bufferBytes) {
      return await spool(reader, chunks, read, options);
    }
  }
  return { kind: "bytes", bytes: concat(chunks, read.total) };
}

/**
 * The next chunk of a body of unknown length, added to `read.total`;
 * undefined at its end. Past `maxBodyBytes` the body is cancelled and
 * refused (413), whether it is buffered or spooled.
 */
async function nextChunk(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  read: { total: number },
  limits: BodyLimits,
): Promise<Uint8Array | undefined> {
  const { done, value } = await readWithin(reader, limits.readTimeoutMs);
  if (done) return undefined;
  read.total += value.length;
  if (limits.maxBodyBytes > 0 && read.total > limits.maxBodyBytes) {
    reader.cancel().catch(() => {});
    throw new BodyTooLargeError(limits.maxBodyBytes);
  }
  return value;
}

/**
 * Writes a chunked body past the memory buffer to a temporary file, to the
 * end, so it can be sent with its length. The file is removed here when the
 * body fails (client gone, stalled, too large, malformed), and by the proxy
 * when the request ends otherwise.
 */
async function spool(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  first: Uint8Array[],
  read: { total: number },
  limits: BodyLimits,
): Promise<RequestBody> {
  let path: string;
  try {
    path = await Deno.makeTempFile({
      ...(limits.tempDir ? { dir: limits.tempDir } : {}),
      prefix: "tq-body-",
    });
  } catch (err) {
    reader.cancel().catch(() => {});
    throw new SpoolError(
      `Cannot create a temporary file in "${
        limits.tempDir ?? "the OS temp dir"
      }"`,
      { cause: err },
    );
  }
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(path, { write: true });
    for (const chunk of first) writeAll(file, chunk, path);
    first.length = 0;
    for (;;) {
      const value = await nextChunk(reader, read, limits);
      if (value === undefined) break;
      writeAll(file, value, path);
    }
    file.close();
    file = undefined;
    return { kind: "file", path, length: read.total };
  } catch (err) {
    file?.close();
    await removeSpooled(path);
    throw err;
  }
}

/** Removes a spooled body; one already gone is not an error. */
export async function removeSpooled(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * Writes to the spool file synchronously, as nginx does: a write into the
 * page cache takes microseconds, while each async file write is a hop to a
 * blocking thread that capped a spooled upload at about 45 MB/s (1,600
 * writes of 32 KiB for 50 MiB took 1.1 s; synchronously 0.14 s).
 */
function writeAll(file: Deno.FsFile, bytes: Uint8Array, path: string): void {
  try {
    let at = 0;
    while (at < bytes.length) at += file.writeSync(bytes.subarray(at));
  } catch (err) {
    throw new SpoolError(`Cannot write the temporary file "${path}"`, {
      cause: err,
    });
  }
}

/** `req.bytes()`, failing with {@linkcode ClientTimeoutError} after `ms`. */
function bytesWithin(req: Request, ms: number): Promise<Uint8Array> {
  const read = req.bytes().catch((err) => {
    throw bodyError(err);
  });
  return within(read, { ms, onTimeout: () => new ClientTimeoutError(ms) });
}

/** The framing header line for `body`, ending in CRLF, or "" for none. */
export function framingLine(body: RequestBody): string {
  if (body.kind === "bytes") return `content-length: ${body.bytes.length}\r\n`;
  if (body.kind === "file") return `content-length: ${body.length}\r\n`;
  if (body.kind === "stream") {
    return body.length >= 0
      ? `content-length: ${body.length}\r\n`
      : "transfer-encoding: chunked\r\n";
  }
  return "";
}

/** Options for {@linkcode pumpBody} and {@linkcode pumpFile}. */
export interface PumpOptions {
  /** True ends the upload quietly (the worker answered early). */
  stopped: () => boolean;
}

/** Options for {@linkcode pumpBody}. */
export interface PumpBodyOptions extends PumpOptions {
  /** The client's read timeout and the body size limit. */
  limits: BodyLimits;
}

/**
 * Writes the rest of a streamed body to the worker. Rejects with
 * {@linkcode ClientTimeoutError}, {@linkcode BodyTooLargeError},
 * {@linkcode ClientBodyError} or {@linkcode UpstreamWriteError};
 * `stopped()` true ends it quietly (the worker answered early).
 */
export async function pumpBody(
  conn: Conn,
  body: Extract<RequestBody, { kind: "stream" }>,
  options: PumpBodyOptions,
): Promise<void> {
  const { limits, stopped } = options;
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
  }
  if (chunked) await send(CHUNKED_END);
}

/** Size of the reads of a spooled body. */
const FILE_READ_BYTES = 256 * 1024;

/**
 * Writes a spooled body to the worker from its file. Rejects with
 * {@linkcode UpstreamWriteError}; `stopped()` true ends it quietly.
 */
export async function pumpFile(
  conn: Conn,
  body: Extract<RequestBody, { kind: "file" }>,
  options: PumpOptions,
): Promise<void> {
  const { stopped } = options;
  // Opened per attempt: a resend reads it again from the start, and the
  // proxy may remove the path while this reads (the open file stays).
  const file = await Deno.open(body.path, { read: true });
  const buf = new Uint8Array(FILE_READ_BYTES);
  let left = body.length;
  try {
    while (left > 0) {
      if (stopped()) return;
      // Synchronous for the reason `writeAll` gives: the bytes were just
      // written and are in the page cache.
      const n = file.readSync(buf.subarray(0, Math.min(buf.length, left)));
      if (n === null) throw new Error("Spooled body file ended early");
      left -= n;
      try {
        await conn.write(buf.subarray(0, n));
      } catch (err) {
        throw new UpstreamWriteError("Writing the body to the worker failed", {
          cause: err,
        });
      }
    }
  } finally {
    file.close();
  }
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
