/**
 * Folder-private: the worker leg of a proxied WebSocket, an RFC 6455 client
 * written over `Deno.connect`: the opening handshake here, the open
 * connection in `_ws_conn.ts`. The `WebSocket` class can close only with
 * 1000 or 3000–4999, so a client's 1001, 1008 or 1011 (and the proxy's own
 * 1009, 1011, 1012) could not reach the worker through it; this client sends
 * any code a close frame may carry. It masks what it sends, answers pings,
 * joins fragmented messages, bounds a message by `maxMessageBytes` (1009)
 * and reports a connection that ends without a close frame as 1006.
 */
import type { HeaderPairs } from "./_headers.ts";
import { isSendableCloseCode } from "./_ws_frames.ts";
import {
  WebSocketClient,
  type WebSocketClientEvents,
  writeAll,
} from "./_ws_conn.ts";

export { isSendableCloseCode };
export { WebSocketClient, type WebSocketClientEvents };

/** What RFC 6455 §1.3 appends to the key before hashing it. */
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** A handshake answer head larger than this is refused. */
const MAX_HANDSHAKE_BYTES = 64 * 1024;

const encoder = new TextEncoder();

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
    return new WebSocketClient(tcp, {
      protocol,
      rest,
      maxMessageBytes: options.maxMessageBytes,
    });
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
