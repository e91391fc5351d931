/**
 * Folder-private: one TCP connection to a worker with its read buffer, and
 * the keep-alive pool of idle ones.
 *
 * An idle pooled connection always has a read pending (as Go's Transport
 * does): when the worker closes it, or sends bytes nobody asked for, the
 * connection leaves the pool at once instead of failing the next request.
 * The next request's first read is that same pending read.
 */

const READ_SIZE = 16 * 1024;
const WRITE_SIZE = 8 * 1024;
const CHUNK_SIZE = 64 * 1024;

/**
 * Writes `text` as latin1 (one byte per char: header values are byte
 * strings, so UTF-8 would double-encode bytes 0x80–0xFF) into `buf` at
 * `at`; returns the end, or -1 when it does not fit.
 */
export function latin1Into(text: string, buf: Uint8Array, at: number): number {
  // Positional arguments, no options object: it runs for every head written and would allocate one each time.
  const end = at + text.length;
  if (end > buf.length) return -1;
  for (let i = 0; i < text.length; i++) buf[at + i] = text.charCodeAt(i);
  return end;
}

/** One socket and its read buffer (`buf[start..end]` holds unread bytes). */
export class Conn {
  readonly tcp: Deno.TcpConn;
  /** True until the connection has carried one response (a reused one may meet a closed socket). */
  fresh = true;
  /** True once closed; it is never used again. */
  closed = false;
  buf = new Uint8Array(READ_SIZE);
  /** Reused for every request head, so writing one allocates nothing. */
  #out = new Uint8Array(WRITE_SIZE);
  start = 0;
  end = 0;
  /** While pooled: the time past which it is closed, not reused. */
  idleUntil = 0;
  /** The read started while idle, consumed by the next {@linkcode fill}. */
  #pending: Promise<number | null> | undefined;
  /** Set when the idle read settled: the worker closed or sent stray bytes. */
  #dead = false;

  constructor(tcp: Deno.TcpConn) {
    this.tcp = tcp;
  }

  /** True when the connection can carry a new request. */
  get usable(): boolean {
    return !this.closed && !this.#dead;
  }

  /** Reads more bytes into the buffer; false on EOF. */
  async fill(): Promise<boolean> {
    return this.filled(await this.read());
  }

  /**
   * The read behind {@linkcode fill}, for the hot path to await without a
   * second async call: pass what it resolves to to {@linkcode filled}.
   */
  read(): Promise<number | null> {
    const pending = this.#pending;
    if (pending !== undefined) {
      this.#pending = undefined;
      return pending;
    }
    this.#makeRoom();
    return this.tcp.read(this.buf.subarray(this.end));
  }

  /** Counts the bytes a {@linkcode read} put in the buffer; false on EOF. */
  filled(n: number | null): boolean {
    if (n === null) return false;
    this.end += n;
    return true;
  }

  /**
   * The next body bytes, at most `max`: what is buffered, else one read
   * straight into a fresh chunk of up to 64 KiB (no copy, fewer reads than
   * through the 16 KiB buffer). Null on EOF.
   */
  async readChunk(max: number): Promise<Uint8Array | null> {
    if (this.start < this.end) {
      const n = Math.min(max, this.end - this.start);
      const chunk = this.buf.slice(this.start, this.start + n);
      this.start += n;
      return chunk;
    }
    const chunk = new Uint8Array(Math.min(max, CHUNK_SIZE));
    const n = await this.tcp.read(chunk);
    if (n === null) return null;
    return n === chunk.length ? chunk : chunk.subarray(0, n);
  }

  /** Starts the idle read; `onDead` runs if it settles before the connection is taken. */
  watchIdle(onDead: (conn: Conn) => void): void {
    this.start = this.end = 0;
    const pending = this.tcp.read(this.buf);
    this.#pending = pending;
    this.#idleRead = pending;
    this.#onDead = onDead;
    // Handlers bound once per connection: nothing allocated per request but the reaction.
    pending.then(this.#idleReadSettled, this.#idleReadFailed);
  }

  /** The idle read the settle handlers belong to (a later one may be pending). */
  #idleRead: Promise<number | null> | undefined;
  #onDead: ((conn: Conn) => void) | undefined;

  #idleReadSettled = (n: number | null): void => {
    if (this.#pending !== this.#idleRead) return; // Taken: the request reads it.
    if (n !== null) this.end += n;
    this.#died();
  };

  #idleReadFailed = (): void => {
    if (this.#pending !== this.#idleRead) return;
    this.#died();
  };

  #died(): void {
    this.#dead = true;
    this.#onDead?.(this);
  }

  #makeRoom(): void {
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
  }

  /**
   * A request head (latin1) and a small body packed into the write buffer,
   * for the caller to write itself (no nested async call on the hot path);
   * undefined when they do not fit: then {@linkcode writeHead}. Valid until
   * the next call.
   */
  packHead(
    text: string,
    body: Uint8Array | undefined,
  ): Uint8Array<ArrayBuffer> | undefined {
    const end = latin1Into(text, this.#out, 0);
    if (end < 0) return undefined;
    if (body === undefined || body.length === 0) {
      return this.#out.subarray(0, end);
    }
    if (end + body.length > this.#out.length) return undefined;
    this.#out.set(body, end);
    return this.#out.subarray(0, end + body.length);
  }

  /** Writes a request head (latin1) and a body: in one write when {@linkcode packHead} fits them. */
  async writeHead(text: string, body: Uint8Array | undefined): Promise<void> {
    const packed = this.packHead(text, body);
    if (packed !== undefined) return await this.write(packed);
    const bytes = new Uint8Array(text.length);
    latin1Into(text, bytes, 0);
    await this.write(bytes);
    if (body !== undefined && body.length > 0) await this.write(body);
  }

  /** Writes all of `bytes`. */
  async write(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) {
      written += await this.tcp.write(
        written === 0 ? bytes : bytes.subarray(written),
      );
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.tcp.close();
    } catch {
      // Already closed by the runtime.
    }
  }
}

/** Options of {@linkcode Pool}. */
export interface PoolOptions {
  /** Idle connections kept per origin. */
  maxIdlePerOrigin: number;
  /** An idle connection older than this is closed, not reused (unless `put` says otherwise). */
  idleTimeoutMs: number;
}

/** Idle keep-alive connections per origin (`host:port`), newest reused first. */
export class Pool {
  readonly #idle = new Map<string, Conn[]>();
  readonly #max: number;
  readonly #timeoutMs: number;
  #swept = performance.now();

  constructor(options: PoolOptions) {
    this.#max = options.maxIdlePerOrigin;
    this.#timeoutMs = options.idleTimeoutMs;
  }

  /** Takes a usable idle connection to `origin`, or undefined. */
  take(origin: string): Conn | undefined {
    const list = this.#idle.get(origin);
    if (list === undefined) return undefined;
    const now = performance.now();
    for (;;) {
      const conn = list.pop();
      if (conn === undefined) return undefined;
      if (conn.usable && now < conn.idleUntil) return conn;
      conn.close();
    }
  }

  /**
   * Returns a connection whose response has been read completely, to be
   * reused within `idleMs` (default: the pool's `idleTimeoutMs`).
   */
  put(origin: string, conn: Conn, idleMs: number = this.#timeoutMs): void {
    const now = performance.now();
    if (now - this.#swept > this.#timeoutMs) this.#sweep(now);
    if (conn.start !== conn.end || !conn.usable) {
      // Bytes past the response: the worker broke framing; never reuse.
      conn.close();
      return;
    }
    let list = this.#idle.get(origin);
    if (list === undefined) this.#idle.set(origin, list = []);
    if (list.length >= this.#max) {
      conn.close();
      return;
    }
    conn.idleUntil = now + idleMs;
    conn.fresh = false;
    list.push(conn);
    conn.watchIdle(this.#onDead);
  }

  #onDead = (conn: Conn): void => {
    conn.close();
  };

  /**
   * Closes idle connections past the timeout, for every origin: a replaced
   * worker's origin is never asked for again, so `take` alone would keep its
   * sockets open forever.
   */
  #sweep(now: number): void {
    this.#swept = now;
    for (const [origin, list] of this.#idle) {
      const keep = list.filter((conn) => {
        if (conn.usable && now < conn.idleUntil) return true;
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
}
