/**
 * A lean HTTP/1.1 transport for the proxy, shaped like `fetch`: body-less
 * requests to `http://` origins go over a keep-alive pool of `Deno.connect`
 * sockets; everything else (a request body, another scheme, a `Request`
 * object) goes to the fallback `fetch`. On loopback it costs about half the
 * CPU of `fetch` per request, which is most of the proxy's cost.
 *
 * It never decodes a body (bytes pass as the worker sent them, whatever the
 * `Content-Encoding`), never follows redirects, and frames responses per
 * RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; `chunked`;
 * `Content-Length`; else until the connection closes.
 */

/** Options for {@linkcode createH1Fetch}. */
export interface H1FetchOptions {
  /**
   * Handles what this transport does not: requests with a body, non-`http:`
   * URLs, `Request` inputs. Default `globalThis.fetch` with one
   * `Deno.createHttpClient({ allowHost: true })` client.
   */
  fallback?: typeof fetch;
  /** Idle keep-alive connections kept per origin. Default 256. */
  maxIdlePerOrigin?: number;
  /** An idle connection older than this is closed, not reused. Default 30000 ms. */
  idleTimeoutMs?: number;
  /** Responses with a `Content-Length` up to this many bytes come back as bytes, larger ones as a stream. Default 65536. */
  bufferLimitBytes?: number;
}

const MAX_HEAD_BYTES = 64 * 1024;
const READ_SIZE = 16 * 1024;
const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** Thrown when a reused keep-alive connection turns out closed before any byte came back. */
class StaleConnection extends Error {}

/** One socket and its read buffer (`buf[start..end]` holds unread bytes). */
class Conn {
  readonly tcp: Deno.TcpConn;
  /** False once the socket has served a response (a reused one may have been closed by the peer). */
  fresh: boolean;
  buf = new Uint8Array(READ_SIZE);
  start = 0;
  end = 0;
  idleSince = 0;

  constructor(tcp: Deno.TcpConn, fresh: boolean) {
    this.tcp = tcp;
    this.fresh = fresh;
  }

  /** Reads more bytes into the buffer; false on EOF. */
  async fill(): Promise<boolean> {
    if (this.start === this.end) {
      this.start = this.end = 0;
    } else if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else {
        const bigger = new Uint8Array(this.buf.length * 2);
        bigger.set(this.buf);
        this.buf = bigger;
      }
    }
    const n = await this.tcp.read(this.buf.subarray(this.end));
    if (n === null) return false;
    this.end += n;
    return true;
  }

  close(): void {
    try {
      this.tcp.close();
    } catch {
      // Already closed.
    }
  }
}

interface Head {
  status: number;
  statusText: string;
  headers: [string, string][];
  contentLength: number;
  chunked: boolean;
  keepAlive: boolean;
}

function connectionClosed(detail: string): TypeError {
  return new TypeError(`Connection to the worker closed ${detail}`);
}

/** Parses a response head (`buf[from..to]` without the final CRLF CRLF). */
function parseHead(bytes: Uint8Array): Head {
  const text = latin1.decode(bytes);
  let eol = text.indexOf("\r\n");
  if (eol < 0) eol = text.length;
  const statusLine = text.slice(0, eol);
  if (!statusLine.startsWith("HTTP/1.")) {
    throw new TypeError(`Bad status line from the worker "${statusLine}"`);
  }
  const status = Number(statusLine.slice(9, 12));
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new TypeError(`Bad status line from the worker "${statusLine}"`);
  }
  const headers: [string, string][] = [];
  let contentLength = -1;
  let chunked = false;
  let keepAlive = statusLine.charCodeAt(7) === 49; // HTTP/1.1 keeps alive by default
  let pos = eol + 2;
  while (pos < text.length) {
    let next = text.indexOf("\r\n", pos);
    if (next < 0) next = text.length;
    const colon = text.indexOf(":", pos);
    if (colon < 0 || colon > next) {
      throw new TypeError("Bad header line from the worker");
    }
    const name = text.slice(pos, colon).toLowerCase();
    const value = text.slice(colon + 1, next).trim();
    pos = next + 2;
    if (name === "content-length") {
      const n = Number(value);
      if (
        !Number.isSafeInteger(n) || n < 0 ||
        (contentLength >= 0 && n !== contentLength)
      ) {
        throw new TypeError(`Bad Content-Length from the worker "${value}"`);
      }
      contentLength = n;
    } else if (name === "transfer-encoding") {
      chunked = value.toLowerCase().endsWith("chunked");
    } else if (name === "connection") {
      const v = value.toLowerCase();
      if (v.includes("close")) keepAlive = false;
      else if (v.includes("keep-alive")) keepAlive = true;
    }
    headers.push([name, value]);
  }
  // Chunked wins over a length (RFC 9112 §6.3), and the length is not forwarded.
  if (chunked) contentLength = -1;
  return {
    status,
    statusText: statusLine.slice(13),
    headers,
    contentLength,
    chunked,
    keepAlive,
  };
}

/** Index just past the first CRLF CRLF in `buf[from..to]`, or -1. */
function findHeadEnd(buf: Uint8Array, from: number, to: number): number {
  for (let i = from + 3; i < to; i++) {
    if (
      buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 &&
      buf[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

/** Reads one CRLF-terminated line (without it) from the connection. */
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
    if (conn.end - conn.start > 8192) {
      throw new TypeError("Chunk line from the worker is too long");
    }
    const offset = scanned - conn.start;
    if (!await conn.fill()) throw connectionClosed("inside a chunked body");
    scanned = conn.start + offset;
  }
}

/** A pool of idle keep-alive connections per origin. */
class Pool {
  readonly #idle = new Map<string, Conn[]>();
  readonly #max: number;
  readonly #timeoutMs: number;
  #swept = performance.now();

  constructor(max: number, timeoutMs: number) {
    this.#max = max;
    this.#timeoutMs = timeoutMs;
  }

  take(origin: string): Conn | undefined {
    const list = this.#idle.get(origin);
    if (list === undefined) return undefined;
    const now = performance.now();
    for (;;) {
      const conn = list.pop();
      if (conn === undefined) return undefined;
      if (now - conn.idleSince < this.#timeoutMs) return conn;
      conn.close();
    }
  }

  /**
   * Closes idle connections past the timeout, for every origin: a replaced
   * worker's origin is never asked for again, so `take` alone would keep its
   * sockets open forever.
   */
  #sweep(now: number): void {
    this.#swept = now;
    for (const [origin, list] of this.#idle) {
      const keep = list.filter((conn) => {
        if (now - conn.idleSince < this.#timeoutMs) return true;
        conn.close();
        return false;
      });
      if (keep.length === 0) this.#idle.delete(origin);
      else this.#idle.set(origin, keep);
    }
  }

  /** Closes every idle connection. */
  closeAll(): void {
    for (const list of this.#idle.values()) {
      for (const conn of list) conn.close();
    }
    this.#idle.clear();
  }

  put(origin: string, conn: Conn): void {
    const now = performance.now();
    if (now - this.#swept > this.#timeoutMs) this.#sweep(now);
    if (conn.start !== conn.end) {
      // Bytes past the response: the worker broke framing; do not reuse.
      conn.close();
      return;
    }
    let list = this.#idle.get(origin);
    if (list === undefined) this.#idle.set(origin, list = []);
    if (list.length >= this.#max) {
      conn.close();
      return;
    }
    conn.idleSince = now;
    conn.fresh = false;
    list.push(conn);
  }
}

/** The transport: `fetch`'s signature plus `close()` for its idle connections. */
export type H1Fetch = typeof fetch & {
  /** Closes the idle keep-alive connections (and the fallback's client, when created here). */
  close(): void;
};

/** Matches a character that must not appear in a request line (controls, space, DEL). */
const UNSAFE = /[\0-\x20\x7f]/;

/**
 * Creates the HTTP/1.1 transport (see the module doc). The returned function
 * has the signature of `fetch`, so it plugs into `createProxy({ fetch })`.
 *
 * @example
 * ```ts
 * const proxy = createProxy(table, { fetch: createH1Fetch() });
 * ```
 */
export function createH1Fetch(options: H1FetchOptions = {}): H1Fetch {
  const {
    maxIdlePerOrigin = 256,
    idleTimeoutMs = 30_000,
    bufferLimitBytes = 65536,
  } = options;
  let fallback = options.fallback;
  let ownClient: Deno.HttpClient | undefined;
  const pool = new Pool(maxIdlePerOrigin, idleTimeoutMs);

  function viaFallback(
    input: RequestInfo | URL,
    init?: RequestInit,
  ): Promise<Response> {
    if (fallback === undefined) {
      const client = ownClient = Deno.createHttpClient({ allowHost: true });
      fallback = (i, o) => fetch(i, { ...o, client });
    }
    return fallback(input, init);
  }

  async function connect(hostname: string, port: number): Promise<Conn> {
    try {
      const tcp = await Deno.connect({ hostname, port });
      tcp.setNoDelay(true);
      return new Conn(tcp, true);
    } catch (err) {
      throw new TypeError(
        `Cannot connect to the worker at "${hostname}:${port}"`,
        { cause: err },
      );
    }
  }

  /** Sends the head and reads the response head, skipping 1xx interim answers. */
  async function exchange(
    conn: Conn,
    bytes: Uint8Array,
    idempotent: boolean,
  ): Promise<Head> {
    let written = 0;
    try {
      while (written < bytes.length) {
        written += await conn.tcp.write(bytes.subarray(written));
      }
    } catch (err) {
      // A reused socket the worker closed while idle fails on write (EPIPE).
      if (!conn.fresh) throw new StaleConnection(undefined, { cause: err });
      throw err;
    }
    let received = false;
    for (;;) {
      let scanFrom = conn.start;
      let headEnd = findHeadEnd(conn.buf, scanFrom, conn.end);
      while (headEnd < 0) {
        if (conn.end - conn.start > MAX_HEAD_BYTES) {
          throw new TypeError("Response head from the worker is too large");
        }
        scanFrom = Math.max(conn.start, conn.end - 3);
        const offset = scanFrom - conn.start;
        let more: boolean;
        try {
          more = await conn.fill();
        } catch (err) {
          // ECONNRESET before any byte on a reused socket: it was closed idle.
          if (!received && !conn.fresh && idempotent) {
            throw new StaleConnection(undefined, { cause: err });
          }
          throw err;
        }
        if (!more) {
          if (!received && !conn.fresh && idempotent) {
            throw new StaleConnection();
          }
          throw connectionClosed("before its response headers");
        }
        received = true;
        headEnd = findHeadEnd(conn.buf, conn.start + offset, conn.end);
      }
      const head = parseHead(conn.buf.subarray(conn.start, headEnd - 4));
      conn.start = headEnd;
      if (head.status >= 200 || head.status === 101) return head;
    }
  }

  async function h1(
    init: RequestInit,
    hostname: string,
    port: number,
    origin: string,
    target: string,
  ): Promise<Response> {
    const method = init.method ?? "GET";
    // Safe to resend when a reused socket turns out closed (RFC 9110 §9.2.2).
    const idempotent = method !== "POST" && method !== "PATCH";
    const signal = init.signal ?? null;
    signal?.throwIfAborted();
    let head = `${method} ${target} HTTP/1.1\r\n`;
    let hasHost = false;
    const headers = init.headers ?? [];
    const pairs: Iterable<[string, string]> = headers instanceof Headers ||
        Array.isArray(headers)
      ? headers as Iterable<[string, string]>
      : Object.entries(headers);
    for (const [name, value] of pairs) {
      if (!hasHost && name.length === 4 && name.toLowerCase() === "host") {
        hasHost = true;
      }
      head += `${name}: ${value}\r\n`;
    }
    if (!hasHost) head += `host: ${origin}\r\n`;
    const bytes = encoder.encode(head + "\r\n");

    let conn: Conn | undefined;
    const onAbort = () => conn?.close();
    signal?.addEventListener("abort", onAbort);
    let response: Head;
    try {
      for (;;) {
        conn = pool.take(origin) ?? await connect(hostname, port);
        try {
          response = await exchange(conn, bytes, idempotent);
          break;
        } catch (err) {
          conn.close();
          if (signal?.aborted) throw signal.reason;
          // A reused keep-alive socket the worker had closed: retry once on a new one.
          if (err instanceof StaleConnection) continue;
          if (err instanceof TypeError) throw err;
          throw new TypeError("Connection to the worker failed", {
            cause: err,
          });
        }
      }
    } catch (err) {
      signal?.removeEventListener("abort", onAbort);
      throw err;
    }
    const c = conn;
    if (response.status === 101) {
      signal?.removeEventListener("abort", onAbort);
      c.close();
      throw new TypeError("Worker switched protocols on a plain request");
    }
    const init2: ResponseInit = {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    };
    const noBody = method === "HEAD" || response.status === 204 ||
      response.status === 304;
    const length = response.contentLength;

    const done = (reusable: boolean) => {
      signal?.removeEventListener("abort", onAbort);
      if (reusable && response.keepAlive) pool.put(origin, c);
      else c.close();
    };

    if (noBody || length === 0) {
      done(true);
      return makeResponse(null, init2);
    }
    if (length > 0 && length <= bufferLimitBytes) {
      try {
        while (c.end - c.start < length) {
          if (!await c.fill()) throw connectionClosed("inside the body");
        }
      } catch (err) {
        done(false);
        if (signal?.aborted) throw signal.reason;
        throw err instanceof TypeError
          ? err
          : new TypeError("Connection to the worker failed", { cause: err });
      }
      const body = c.buf.slice(c.start, c.start + length);
      c.start += length;
      done(true);
      return makeResponse(body, init2);
    }
    let next: () => Promise<Uint8Array | null>;
    if (response.chunked) next = chunkedReader(c);
    else if (length > 0) next = lengthReader(c, length);
    else next = closeReader(c);
    const closeDelimited = !response.chunked && length < 0;
    let finished = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let chunk: Uint8Array | null;
        try {
          chunk = await next();
        } catch (err) {
          finished = true;
          done(false);
          controller.error(signal?.aborted ? signal.reason : err);
          return;
        }
        if (chunk === null) {
          finished = true;
          done(!closeDelimited);
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
    return makeResponse(body, init2);
  }

  function h1Fetch(
    input: RequestInfo | URL,
    init: RequestInit = {},
  ): Promise<Response> {
    if (
      typeof input !== "string" || init.body != null ||
      !input.startsWith("http://")
    ) {
      return viaFallback(input, init);
    }
    const slash = input.indexOf("/", 7);
    const origin = slash < 0 ? input.slice(7) : input.slice(7, slash);
    const target = slash < 0 ? "/" : input.slice(slash);
    const colon = origin.lastIndexOf(":");
    const port = colon < 0 || origin.endsWith("]")
      ? 80
      : Number(origin.slice(colon + 1));
    let hostname = colon < 0 || origin.endsWith("]")
      ? origin
      : origin.slice(0, colon);
    if (hostname.startsWith("[")) hostname = hostname.slice(1, -1);
    if (
      UNSAFE.test(target) || origin.includes("@") || !Number.isInteger(port) ||
      (init.method !== undefined && UNSAFE.test(init.method))
    ) {
      return viaFallback(input, init);
    }
    return h1(init, hostname, port, origin, target);
  }
  return Object.assign(h1Fetch as typeof fetch, {
    close() {
      pool.closeAll();
      ownClient?.close();
    },
  });
}

function makeResponse(
  body: BodyInit | null,
  init: ResponseInit,
): Response {
  try {
    return new Response(body, init);
  } catch {
    // An odd reason phrase (obs-text) is the likely culprit: drop it.
    return new Response(body, { ...init, statusText: "" });
  }
}

function lengthReader(
  conn: Conn,
  length: number,
): () => Promise<Uint8Array | null> {
  let left = length;
  return async () => {
    if (left === 0) return null;
    if (conn.start === conn.end && !await conn.fill()) {
      throw connectionClosed("inside the body");
    }
    const n = Math.min(left, conn.end - conn.start);
    const chunk = conn.buf.slice(conn.start, conn.start + n);
    conn.start += n;
    left -= n;
    return chunk;
  };
}

function closeReader(conn: Conn): () => Promise<Uint8Array | null> {
  return async () => {
    if (conn.start === conn.end && !await conn.fill()) return null;
    const chunk = conn.buf.slice(conn.start, conn.end);
    conn.start = conn.end;
    return chunk;
  };
}

function chunkedReader(conn: Conn): () => Promise<Uint8Array | null> {
  let left = 0;
  let ended = false;
  return async () => {
    if (ended) return null;
    while (left === 0) {
      const line = await readLine(conn);
      const semi = line.indexOf(";");
      const size = parseInt(semi < 0 ? line : line.slice(0, semi), 16);
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new TypeError(`Bad chunk size from the worker "${line}"`);
      }
      if (size === 0) {
        // Trailer fields are dropped (hop-by-hop `Trailer` is not forwarded).
        while ((await readLine(conn)) !== "");
        ended = true;
        return null;
      }
      left = size;
    }
    if (conn.start === conn.end && !await conn.fill()) {
      throw connectionClosed("inside a chunked body");
    }
    const n = Math.min(left, conn.end - conn.start);
    const chunk = conn.buf.slice(conn.start, conn.start + n);
    conn.start += n;
    left -= n;
    if (left === 0 && (await readLine(conn)) !== "") {
      throw new TypeError("Bad chunk end from the worker");
    }
    return chunk;
  };
}
