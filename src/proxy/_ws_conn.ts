/**
 * Folder-private: one open WebSocket connection to a worker, after the
 * handshake (`_ws_client.ts`): it masks what it sends, answers pings, joins
 * fragmented messages, bounds a message by `maxMessageBytes` (1009), sends
 * any close code a close frame may carry and reports a connection that ends
 * without a close frame as 1006.
 */
import {
  applyMask,
  closePayload,
  type FrameHead,
  frameHead,
  Inbox,
  join,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  parseClose,
} from "./_ws_frames.ts";

/** How long a closing handshake may take before the connection is dropped. */
const CLOSE_WAIT_MS = 1000;

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

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

/** What a {@linkcode WebSocketClient} starts from. */
export interface WebSocketClientInit {
  /** The subprotocol the worker chose, or "". */
  protocol: string;
  /** Frame bytes that came with the handshake answer. */
  rest: Uint8Array;
  /** A message larger than this is refused with 1009. */
  maxMessageBytes: number;
}

/** Writes all of `bytes` to `tcp`. */
export async function writeAll(
  tcp: Deno.TcpConn,
  bytes: Uint8Array,
): Promise<void> {
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

  /**
   * @param tcp The connection, its handshake done.
   * @param options The subprotocol the worker chose, the frame bytes that
   *   came with the handshake, and the largest message accepted.
   */
  constructor(tcp: Deno.TcpConn, options: WebSocketClientInit) {
    this.#tcp = tcp;
    this.protocol = options.protocol;
    this.#inbox.push(options.rest);
    this.#max = options.maxMessageBytes;
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
