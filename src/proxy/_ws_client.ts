/**
 * Folder-private: the worker leg of a proxied WebSocket, an RFC 6455 client
 * written over `Deno.connect`. The `WebSocket` class can close only with
 * 1000 or 3000–4999, so a client's 1001, 1008 or 1011 (and the proxy's own
 * 1009, 1011, 1012) could not reach the worker through it; this client sends
 * any code a close frame may carry. It masks what it sends, answers pings,
 * joins fragmented messages, bounds a message by `maxMessageBytes` (1009)
 * and reports a connection that ends without a close frame as 1006.
 */
import type { HeaderPairs } from "./_headers.ts";
import {
  applyMask,
  closePayload,
  type FrameHead,
  frameHead,
  Inbox,
  isSendableCloseCode,
  join,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  parseClose,
} from "./_ws_frames.ts";

export { isSendableCloseCode };

/** What RFC 6455 §1.3 appends to the key before hashing it. */
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** A handshake answer head larger than this is refused. */
const MAX_HANDSHAKE_BYTES = 64 * 1024;
/** How long a closing handshake may take before the connection is dropped. */
const CLOSE_WAIT_MS = 1000;

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The worker did not accept the upgrade; `status` is its answer's status, 0 for none. */
export class WebSocketHandshakeError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** What {@linkcode connectWebSocket} needs. */
export interface WebSocketClientOptions {
  hostname: string;
  port: number;
  /** Path and query of the upgrade request. */
  target: string;
  /** Request header fields (Host and the forwarding ones), none of the handshake's. */
  headers: HeaderPairs;
  /** Subprotocols offered, in order. */
  protocols: string[];
  /** A message larger than this is refused with 1009. */
  maxMessageBytes: number;
  /** Aborts the connect and the handshake. */
  signal: AbortSignal;
}

/** The callbacks of a {@linkcode WebSocketClient}; set before `start()`. */
export interface WebSocketClientEvents {
  /** A whole message: text as a string, binary as bytes. */
  onmessage(data: string | Uint8Array<ArrayBuffer>): void;
  /**
   * The connection ended, once: with the worker's close code (1005 when its
   * frame had none), 1006 when it ended without a close frame, or the code
   * this client closed with. `tooBig` is the size of a refused message.
   */
  onclose(code: number, reason: string, tooBig?: number): void;
}

/**
 * Opens a WebSocket to a worker: connects, sends the upgrade request and
 * checks the `101` answer (`Sec-WebSocket-Accept`, the subprotocol).
 *
 * @throws {WebSocketHandshakeError} When the worker answers anything else.
 * @throws The connect error when the worker cannot be reached.
 */
export async function connectWebSocket(
  options: WebSocketClientOptions,
): Promise<WebSocketClient> {
  const { hostname, port, target, headers, protocols, signal } = options;
  const tcp = await Deno.connect({ hostname, port, signal });
  const onAbort = () => tcp.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    tcp.setNoDelay(true);
    const key = btoa(
      String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))),
    );
    let head = `GET ${target} HTTP/1.1\r\n`;
    for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
    head += "connection: Upgrade\r\nupgrade: websocket\r\n" +
      `sec-websocket-version: 13\r\nsec-websocket-key: ${key}\r\n`;
    if (protocols.length > 0) {
      head += `sec-websocket-protocol: ${protocols.join(", ")}\r\n`;
    }
    await writeAll(tcp, encoder.encode(head + "\r\n"));
    const { status, fields, rest } = await readHandshake(tcp);
    if (status !== 101) {
      throw new WebSocketHandshakeError(
        `Worker answered the WebSocket upgrade with ${status}`,
        status,
      );
    }
    const expected = await acceptOf(key);
    if (fields.get("sec-websocket-accept") !== expected) {
      throw new WebSocketHandshakeError(
        "Worker's Sec-WebSocket-Accept does not match the key",
        status,
      );
    }
    const protocol = fields.get("sec-websocket-protocol") ?? "";
    if (protocol !== "" && !protocols.includes(protocol)) {
      throw new WebSocketHandshakeError(
        `Worker chose subprotocol "${protocol}", which was not offered`,
        status,
      );
    }
    signal.removeEventListener("abort", onAbort);
    return new WebSocketClient(tcp, protocol, rest, options.maxMessageBytes);
  } catch (err) {
    signal.removeEventListener("abort", onAbort);
    try {
      tcp.close();
    } catch {
      // Closed by the abort already.
    }
    throw err;
  }
}

async function acceptOf(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    encoder.encode(key + GUID),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** Reads the handshake answer head; `rest` holds the frame bytes that came with it. */
async function readHandshake(
  tcp: Deno.TcpConn,
): Promise<
  { status: number; fields: Map<string, string>; rest: Uint8Array }
> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024);
  for (;;) {
    const n = await tcp.read(chunk);
    if (n === null) {
      throw new WebSocketHandshakeError(
        "Worker closed the connection during the WebSocket handshake",
        0,
      );
    }
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    const end = indexOfHeadEnd(buf);
    if (end >= 0) {
      const text = new TextDecoder("latin1").decode(buf.subarray(0, end));
      const [statusLine = "", ...lines] = text.split("\r\n");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
      const fields = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(":");
        if (colon > 0) {
          fields.set(
            line.slice(0, colon).trim().toLowerCase(),
            line.slice(colon + 1).trim(),
          );
        }
      }
      return {
        status: Number.isFinite(status) ? status : 0,
        fields,
        rest: buf.slice(end + 4),
      };
    }
    if (buf.length > MAX_HANDSHAKE_BYTES) {
      throw new WebSocketHandshakeError(
        `Worker's handshake answer is over ${MAX_HANDSHAKE_BYTES} bytes`,
        0,
      );
    }
  }
}

function indexOfHeadEnd(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (
      buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 &&
      buf[i + 3] === 10
    ) return i;
  }
  return -1;
}

async function writeAll(tcp: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await tcp.write(bytes.subarray(at));
  }
}

/**
 * One WebSocket connection to a worker (see the module doc). Call `start()`
 * once the callbacks are set: frames that came with the handshake are then
 * delivered first.
 */
export class WebSocketClient {
  /** The subprotocol the worker chose, or "". */
  readonly protocol: string;
  #tcp: Deno.TcpConn;
  #inbox = new Inbox();
  #max: number;
  #events: WebSocketClientEvents | undefined;
  #writing: Promise<void> = Promise.resolve();
  #sentClose = false;
  #closed = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    tcp: Deno.TcpConn,
    protocol: string,
    rest: Uint8Array,
    maxMessageBytes: number,
  ) {
    this.#tcp = tcp;
    this.protocol = protocol;
    this.#inbox.push(rest);
    this.#max = maxMessageBytes;
  }

  /** True until a close frame was sent or the connection ended. */
  get open(): boolean {
    return !this.#sentClose && !this.#closed;
  }

  /** Delivers messages and the close to `events`, from now on. */
  start(events: WebSocketClientEvents): void {
    this.#events = events;
    this.#readLoop().catch(() => this.#end(1006, ""));
  }

  /** Sends a text (string) or binary message as one masked frame. */
  send(data: string | ArrayBuffer | Uint8Array): void {
    if (!this.open) return;
    const bytes = typeof data === "string"
      ? encoder.encode(data)
      : data instanceof Uint8Array
      ? data
      : new Uint8Array(data);
    this.#frame(typeof data === "string" ? OP_TEXT : OP_BINARY, bytes);
  }

  /**
   * Starts the closing handshake with `code` (none: an empty close frame,
   * which the worker sees as 1005); the connection is dropped if the worker
   * does not answer within a second. `code` 1006 drops it at once, without
   * a close frame, as a client that vanished would.
   */
  close(code?: number, reason = ""): void {
    if (this.#closed) return;
    if (code === 1006) {
      this.#end(1006, "");
      return;
    }
    if (!this.#sentClose) {
      this.#sentClose = true;
      this.#frame(OP_CLOSE, closePayload(code, reason));
      this.#closeTimer = setTimeout(
        () => this.#end(code ?? 1005, reason),
        CLOSE_WAIT_MS,
      );
    }
  }

  #frame(opcode: number, payload: Uint8Array): void {
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const n = payload.length;
    const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
    const head = new Uint8Array(2 + lengthBytes + 4);
    head[0] = 0x80 | opcode;
    if (lengthBytes === 0) head[1] = 0x80 | n;
    else if (lengthBytes === 2) {
      head[1] = 0x80 | 126;
      head[2] = n >> 8;
      head[3] = n & 0xff;
    } else {
      head[1] = 0x80 | 127;
      new DataView(head.buffer).setBigUint64(2, BigInt(n));
    }
    head.set(mask, 2 + lengthBytes);
    const masked = applyMask(payload, mask);
    const tcp = this.#tcp;
    let write: () => Promise<void>;
    if (n < 65536) {
      // One write (one packet) for the usual small message.
      const out = new Uint8Array(head.length + n);
      out.set(head);
      out.set(masked, head.length);
      write = () => writeAll(tcp, out);
    } else {
      // A large one is not copied once more just to save a write.
      write = async () => {
        await writeAll(tcp, head);
        await writeAll(tcp, masked);
      };
    }
    this.#writing = this.#writing.then(write).catch(() => this.#end(1006, ""));
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    /** Parts of a fragmented message, and its opcode. */
    let parts: Uint8Array[] = [];
    let partsSize = 0;
    let messageOp = 0;
    for (;;) {
      let head: FrameHead | undefined;
      while ((head = frameHead(this.#inbox)) === undefined) {
        const n = await this.#tcp.read(buf);
        if (n === null) return this.#end(1006, "");
        this.#inbox.push(buf.slice(0, n));
      }
      const { fin, opcode, masked, headBytes, payload } = head;
      const control = opcode >= 0x8;
      if (control && (payload > 125 || !fin)) {
        return this.#fail(1002, "Invalid control frame");
      }
      if (!control && partsSize + payload > this.#max) {
        // Refused before its bytes are read: they may be gigabytes.
        return this.#fail(
          1009,
          "Message too big",
          partsSize + payload,
        );
      }
      while (this.#inbox.size < headBytes + payload) {
        const n = await this.#tcp.read(buf);
        if (n === null) return this.#end(1006, "");
        this.#inbox.push(buf.slice(0, n));
      }
      const headBytesRead = this.#inbox.take(headBytes);
      let data = this.#inbox.take(payload);
      if (masked) data = applyMask(data, headBytesRead.subarray(headBytes - 4));
      if (opcode === OP_CLOSE) {
        const { code, reason } = parseClose(data);
        if (code === -1) return this.#fail(1002, "Invalid close frame");
        if (!this.#sentClose) {
          // Echo the code (RFC 6455 §5.5.1), then the worker closes the TCP.
          this.#sentClose = true;
          this.#frame(OP_CLOSE, closePayload(code === 1005 ? undefined : code));
        }
        await this.#writing;
        return this.#end(code, reason);
      }
      if (opcode === OP_PING) {
        if (!this.#sentClose) this.#frame(OP_PONG, data);
        continue;
      }
      if (opcode === OP_PONG) continue;
      if (opcode === OP_CONTINUATION) {
        if (messageOp === 0) return this.#fail(1002, "Unexpected continuation");
      } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
        if (messageOp !== 0) return this.#fail(1002, "Expected continuation");
        messageOp = opcode;
      } else {
        return this.#fail(1002, "Unknown opcode");
      }
      parts.push(data);
      partsSize += data.length;
      if (!fin) continue;
      const whole = parts.length === 1 ? parts[0]! : join(parts, partsSize);
      const op = messageOp;
      parts = [];
      partsSize = 0;
      messageOp = 0;
      if (this.#sentClose) continue; // Closing: what still comes is dropped.
      if (op === OP_TEXT) {
        let text: string;
        try {
          text = strictUtf8.decode(whole);
        } catch {
          return this.#fail(1007, "Invalid UTF-8");
        }
        this.#events?.onmessage(text);
      } else {
        this.#events?.onmessage(whole as Uint8Array<ArrayBuffer>);
      }
    }
  }

  /** Closes with `code` because of what the worker sent, and reports it. */
  async #fail(code: number, reason: string, tooBig?: number): Promise<void> {
    if (!this.#sentClose) {
      this.#sentClose = true;
      this.#frame(OP_CLOSE, closePayload(code, reason));
    }
    await this.#writing;
    this.#end(code, reason, tooBig);
  }

  #end(code: number, reason: string, tooBig?: number): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#closeTimer);
    try {
      this.#tcp.close();
    } catch {
      // Closed already.
    }
    this.#events?.onclose(code, reason, tooBig);
  }
}
