/**
 * Folder-private: the HTTP/1.1 response-head parser of the worker transport
 * (RFC 9112 §4–§6). Pure functions over bytes, so every error branch has a
 * byte-fixture test (`response_head_test.ts`).
 */

/** Longest response head accepted from a worker (nginx's proxy_buffer is 4–8 KiB; Go allows 1 MiB). */
export const MAX_HEAD_BYTES = 64 * 1024;

/** How the body after a response head is delimited (RFC 9112 §6.3). */
export type BodyFraming = "none" | "length" | "chunked" | "close";

/** A parsed response head. */
export interface ResponseHead {
  status: number;
  /** Every field as sent, names lower-cased, in order (repeated `Set-Cookie` kept). */
  headers: [string, string][];
  /** The `Content-Length`, or -1 when absent or overridden by `Transfer-Encoding`. */
  contentLength: number;
  /** True for `Transfer-Encoding: chunked` (the only transfer coding accepted). */
  chunked: boolean;
  /** True when the connection may carry another request after this response. */
  keepAlive: boolean;
}

/** A worker answered with bytes that are not a valid HTTP/1.1 response head. */
export class BadResponseError extends TypeError {}

const utf8 = new TextDecoder();

/**
 * `bytes` as a string of one char per byte (latin1: a field value may carry
 * obs-text bytes 0x80–0xFF, RFC 9110 §5.5). Not `TextDecoder("latin1")`,
 * which is windows-1252 (0x80 would become U+20AC).
 */
function byteString(bytes: Uint8Array): string {
  let all = 0;
  for (let i = 0; i < bytes.length; i++) all |= bytes[i]!;
  // ASCII, the usual head: UTF-8 reads it the same, natively (2.4x faster here).
  if (all < 128) return utf8.decode(bytes);
  let text = "";
  for (let at = 0; at < bytes.length; at += 4096) {
    text += String.fromCharCode.apply(
      null,
      bytes.subarray(at, at + 4096) as unknown as number[],
    );
  }
  return text;
}

/**
 * Index just past the first CRLF CRLF in `buf[from..to]`, or -1. A bare LF
 * line end is accepted too (RFC 9112 §2.2 lets a recipient do so).
 */
export function findHeadEnd(buf: Uint8Array, from: number, to: number): number {
  // Positional arguments, no options object: it runs on every read of a response head and would allocate one each time.
  // A plain loop: heads are short, and subarray()/indexOf() allocate per call.
  for (let i = from; i + 1 < to; i++) {
    if (buf[i] !== 10) continue;
    const next = buf[i + 1];
    if (next === 10) return i + 2;
    if (next === 13 && i + 2 < to && buf[i + 2] === 10) return i + 3;
  }
  return -1;
}

/**
 * Parses one response head: `bytes` runs from the status line up to and
 * including the empty line that ends the head.
 *
 * @throws {BadResponseError} For a status line that is not `HTTP/1.x NNN`,
 *   a header line without a colon or with space before it, an obsolete line
 *   fold, a Content-Length that is not a number or disagrees with another
 *   one, a Transfer-Encoding other than one `chunked`, a NUL or CR in a value.
 */
export function parseResponseHead(bytes: Uint8Array): ResponseHead {
  const text = byteString(bytes);
  // Scanned by index, each line's bounds found in place: one string for a
  // field's name and one for its value, no array of lines (a per-request cost).
  let eol = text.indexOf("\n");
  if (eol < 0) eol = text.length;
  const statusLine = text.slice(0, lineEnd(text, 0, eol));
  if (
    !statusLine.startsWith("HTTP/1.") || statusLine.length < 12 ||
    statusLine.charCodeAt(8) !== 32 ||
    (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)
  ) {
    throw new BadResponseError(
      `Bad status line from the worker "${statusLine.slice(0, 80)}"`,
    );
  }
  const status = statusCode(statusLine);
  if (status < 0) {
    throw new BadResponseError(
      `Bad status code from the worker "${statusLine.slice(0, 80)}"`,
    );
  }
  const minor = statusLine.charCodeAt(7);
  let keepAlive = minor === 49; // HTTP/1.1 keeps alive unless told otherwise
  const headers: [string, string][] = [];
  let contentLength = -1;
  let chunked = false;
  let transferEncoding = false;
  for (let at = eol + 1; at < text.length; at = eol + 1) {
    eol = text.indexOf("\n", at);
    if (eol < 0) eol = text.length;
    const end = lineEnd(text, at, eol);
    if (end === at) break;
    const first = text.charCodeAt(at);
    if (first === 32 || first === 9) {
      throw new BadResponseError("Obsolete line folding in a worker's header");
    }
    const colon = text.indexOf(":", at);
    if (colon <= at || colon >= end) {
      throw new BadResponseError(
        `Bad header line from the worker "${text.slice(at, end).slice(0, 80)}"`,
      );
    }
    if (!isToken(text, at, colon)) {
      // Includes "Name : value": whitespace before the colon smuggles (RFC 9112 §5.1).
      throw new BadResponseError(
        `Bad header name from the worker "${
          text.slice(at, Math.min(colon, at + 80))
        }"`,
      );
    }
    const name = text.slice(at, colon).toLowerCase();
    // Optional whitespace around the value is spaces and tabs (RFC 9110 §5.6.3).
    let from = colon + 1;
    let to = end;
    while (from < to && isOws(text.charCodeAt(from))) from++;
    while (to > from && isOws(text.charCodeAt(to - 1))) to--;
    if (hasNulOrCr(text, from, to)) {
      // RFC 9110 §5.5: a recipient rejects these; Fetch's Headers would throw.
      throw new BadResponseError(
        `Bad header value from the worker (a NUL or CR) in "${
          text.slice(at, Math.min(colon, at + 80))
        }"`,
      );
    }
    const value = text.slice(from, to);
    if (name === "content-length") {
      if (!isLength(value)) {
        throw new BadResponseError(
          `Bad Content-Length from the worker "${value.slice(0, 40)}"`,
        );
      }
      const n = Number(value);
      if (contentLength >= 0 && n !== contentLength) {
        throw new BadResponseError(
          `Conflicting Content-Length values from the worker "${contentLength}" and "${n}"`,
        );
      }
      contentLength = n;
    } else if (name === "transfer-encoding") {
      // Only `chunked`, once (as nginx): the proxy removes transfer codings,
      // so a body also gzip-coded for transfer would reach the client as
      // bytes nothing says how to decode.
      if (transferEncoding || value.toLowerCase() !== "chunked") {
        throw new BadResponseError(
          `Unsupported Transfer-Encoding from the worker "${
            value.slice(0, 40)
          }" (only chunked)`,
        );
      }
      transferEncoding = true;
      chunked = true;
    } else if (name === "connection") {
      const v = value.toLowerCase();
      if (v.includes("close")) keepAlive = false;
      else if (v.includes("keep-alive")) keepAlive = true;
    }
    headers.push([name, value]);
  }
  let fields = headers;
  if (transferEncoding) {
    // Transfer-Encoding overrides a length (RFC 9112 §6.3 item 3); a response
    // with both may be an attempt to smuggle, so its connection is not reused,
    // and the length is not passed on (a proxy must remove it, §6.3: the
    // client would read a body of that length from bytes framed otherwise).
    if (contentLength >= 0) {
      keepAlive = false;
      fields = headers.filter((field) => field[0] !== "content-length");
    }
    contentLength = -1;
  }
  return {
    status,
    headers: fields,
    contentLength,
    chunked,
    keepAlive,
  };
}

/**
 * How the body of `head` is delimited for a request with `method`
 * (RFC 9112 §6.3): none for HEAD, 1xx, 204 and 304; chunked; a length; else
 * until the connection closes (and the connection is not reused).
 */
export function bodyFraming(head: ResponseHead, method: string): BodyFraming {
  const { status } = head;
  if (
    method === "HEAD" || status < 200 || status === 204 || status === 304
  ) return "none";
  if (head.chunked) return "chunked";
  if (head.contentLength === 0) return "none";
  if (head.contentLength > 0) return "length";
  return "close";
}

/** The end of the line `text[at..eol]` without its CR (a bare LF ends a line too). */
function lineEnd(text: string, at: number, eol: number): number {
  return eol > at && text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol;
}

/** The status code of `HTTP/1.x NNN …` (100–599), or -1. */
function statusCode(statusLine: string): number {
  const a = statusLine.charCodeAt(9) - 48;
  const b = statusLine.charCodeAt(10) - 48;
  const c = statusLine.charCodeAt(11) - 48;
  if (a < 1 || a > 5 || b < 0 || b > 9 || c < 0 || c > 9) return -1;
  return a * 100 + b * 10 + c;
}

/** True when `text[from..to]` holds a NUL or a CR, which no field value may carry (LF already ends the line). */
function hasNulOrCr(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 0 || c === 13) return true;
  }
  return false;
}

/** True for 1 to 15 decimal digits: a Content-Length a Number holds exactly. */
function isLength(value: string): boolean {
  if (value.length === 0 || value.length > 15) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Space or tab. */
function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/** `tchar`s (RFC 9110 §5.6.2), by char code. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = TCHAR[c + 32] = 1;

/** True when `text[from..to]` is a non-empty token (RFC 9110 §5.6.2). */
function isToken(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return to > from;
}
