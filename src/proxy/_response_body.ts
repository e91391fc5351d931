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
