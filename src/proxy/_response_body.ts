/**
 * Folder-private: readers of a response body off a worker connection, one per
 * framing (RFC 9112 §6–§7). Each returns the next chunk, or null at the end.
 */
import type { Conn } from "./_conn.ts";
import { BadResponseError } from "./_response_head.ts";

const latin1 = new TextDecoder("latin1");
/** Longest chunk-size or trailer line accepted. */
const MAX_LINE = 8192;

/** Reads the next chunk of a body; null once it has ended. */
export type BodyReader = () => Promise<Uint8Array | null>;

/** The worker closed the connection in the middle of a message. */
export function closedInside(what: string): TypeError {
  return new TypeError(`Connection to the worker closed inside ${what}`);
}

/** Reads exactly `length` bytes. */
export function lengthReader(conn: Conn, length: number): BodyReader {
  let left = length;
  return async () => {
    if (left === 0) return null;
    const chunk = await conn.readChunk(left);
    if (chunk === null) throw closedInside("the body");
    left -= chunk.length;
    return chunk;
  };
}

/** Reads until the worker closes the connection. */
export function closeReader(conn: Conn): BodyReader {
  return () => conn.readChunk(Number.MAX_SAFE_INTEGER);
}

/** Reads a chunked body, dropping extensions and trailer fields. */
export function chunkedReader(conn: Conn): BodyReader {
  let left = 0;
  let ended = false;
  return async () => {
    if (ended) return null;
    while (left === 0) {
      const line = await readLine(conn);
      const semi = line.indexOf(";");
      const size = (semi < 0 ? line : line.slice(0, semi)).trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(size)) {
        throw new BadResponseError(
          `Bad chunk size from the worker "${line.slice(0, 40)}"`,
        );
      }
      left = parseInt(size, 16);
      if (left === 0) {
        // Trailer fields are dropped (`Trailer` is hop-by-hop, not forwarded).
        while ((await readLine(conn)) !== "");
        ended = true;
        return null;
      }
    }
    if (conn.start === conn.end && !await conn.fill()) {
      throw closedInside("a chunked body");
    }
    const n = Math.min(left, conn.end - conn.start);
    const chunk = conn.buf.slice(conn.start, conn.start + n);
    conn.start += n;
    left -= n;
    if (left === 0 && (await readLine(conn)) !== "") {
      throw new BadResponseError("Bad chunk end from the worker");
    }
    return chunk;
  };
}

/**
 * The whole of a chunked body when all of it is already in the connection's
 * buffer (a small answer whose head, chunks and last chunk came in one
 * read), decoded, with `conn.start` moved past it (trailers dropped, as by
 * {@linkcode chunkedReader}). Null, consuming nothing, when any of it is
 * still to come, it is over `maxBytes`, or it breaks the framing: then the
 * body streams, and {@linkcode chunkedReader} reports what is wrong. Nothing
 * is ever waited for, so a slow stream is never held back.
 */
export function bufferedChunked(
  conn: Conn,
  maxBytes: number,
): Uint8Array<ArrayBuffer> | null {
  const { buf, end } = conn;
  const parts: number[] = [];
  let total = 0;
  let at = conn.start;
  for (;;) {
    const lf = lineEnd(buf, at, end);
    if (lf < 0) return null;
    let size = 0;
    let digits = 0;
    for (let i = at; i < lf; i++) {
      const c = buf[i]!;
      const digit = c >= 48 && c <= 57
        ? c - 48
        : c >= 97 && c <= 102
        ? c - 87
        : c >= 65 && c <= 70
        ? c - 55
        : -1;
      if (digit < 0) break;
      size = size * 16 + digit;
      digits++;
    }
    // Anything but bare hex digits (an extension, spaces, a bad size): the
    // streaming reader's rules decide.
    if (digits === 0 || digits > 12 || at + digits !== crlfStart(buf, lf)) {
      return null;
    }
    at = lf + 1;
    if (size === 0) break;
    total += size;
    if (total > maxBytes) return null;
    const dataEnd = at + size;
    const next = lineEnd(buf, dataEnd, end);
    // The data, then CRLF (or LF) right after it.
    if (next < 0 || crlfStart(buf, next) !== dataEnd) return null;
    parts.push(at, size);
    at = next + 1;
  }
  // Trailer fields, up to the empty line.
  for (;;) {
    const lf = lineEnd(buf, at, end);
    if (lf < 0 || lf - at > MAX_LINE) return null;
    const empty = crlfStart(buf, lf) === at;
    at = lf + 1;
    if (empty) break;
  }
  const out = new Uint8Array(total);
  for (let i = 0, o = 0; i < parts.length; i += 2) {
    out.set(buf.subarray(parts[i]!, parts[i]! + parts[i + 1]!), o);
    o += parts[i + 1]!;
  }
  conn.start = at;
  return out;
}

/** Index of the next LF in `buf[from..to]`, or -1. */
function lineEnd(buf: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) if (buf[i] === 10) return i;
  return -1;
}

/** Where the line ending at the LF at `lf` has its CR (or the LF itself). */
function crlfStart(buf: Uint8Array, lf: number): number {
  return lf > 0 && buf[lf - 1] === 13 ? lf - 1 : lf;
}

/** Reads one LF-terminated line (without CRLF) from the connection. */
async function readLine(conn: Conn): Promise<string> {
  let scanned = conn.start;
  for (;;) {
    const lf = conn.buf.subarray(scanned, conn.end).indexOf(10);
    if (lf >= 0) {
      const end = scanned + lf;
      const line = latin1.decode(conn.buf.subarray(conn.start, end));
      conn.start = end + 1;
      return line.endsWith("\r") ? line.slice(0, -1) : line;
    }
    if (conn.end - conn.start > MAX_LINE) {
      throw new BadResponseError("Chunk line from the worker is too long");
    }
    const offset = conn.end - conn.start;
    if (!await conn.fill()) throw closedInside("a chunked body");
    scanned = conn.start + offset;
  }
}
