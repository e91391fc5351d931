/**
 * Folder-private: proxied WebSockets. The client leg is Deno's server-side
 * WebSocket (`Deno.upgradeWebSocket`, which may close with any code); the
 * worker leg is our own RFC 6455 client (`_ws_client.ts`), so close codes
 * pass unchanged both ways where a close frame can carry them.
 *
 * Close codes (docs/contract.md lists the same table):
 * - a code a close frame may carry (1000–1003, 1007–1014, 3000–4999) and
 *   its reason: relayed as they are, either way;
 * - no code (1005): an empty close frame, either way;
 * - the client vanished (1006, no close frame): the worker's connection is
 *   dropped, so the worker sees 1006 too;
 * - the worker's connection ended without a close frame (it died, 1006):
 *   the client gets 1011;
 * - a message over `max_ws_message_bytes`: 1009 to both;
 * - the instance was replaced: 1012 to both after `websocket_drain_ms`;
 * - the server stops: 1001 to both.
 */
import type { Logger } from "../log/logger.ts";
import { describeError, type ErrorHandler } from "./_errors.ts";
import { type HeaderPairs, upstreamHeaders } from "./_headers.ts";
import { unavailable } from "./_failures.ts";
import type { RequestContext } from "./context.ts";
import {
  connectWebSocket,
  isSendableCloseCode,
  type WebSocketClient,
  WebSocketHandshakeError,
} from "./_ws_client.ts";

/** Handshake fields our client computes itself; never copied upstream. */
const HANDSHAKE: ReadonlySet<string> = new Set([
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "accept-encoding",
  "content-length",
]);

/** The largest frame Deno's server-side WebSocket accepts from a client. */
export const DENO_WS_MAX_BYTES = 64 * 1024 * 1024;

/** One proxied WebSocket, as the proxy tracks it. */
export interface WebSocketBridge {
  /** The worker instance it is connected to, e.g. `http://127.0.0.1:9001`. */
  readonly origin: string;
  /** Closes both legs with `code` and `reason`. */
  close(code: number, reason: string): void;
  /** Settles once the worker's connection has ended. */
  readonly ended: Promise<void>;
}

/** What {@linkcode proxyWebSocket} needs besides the request. */
export interface WebSocketProxyOptions {
  /** Path and query to open on the worker. */
  target: string;
  /** The fields sent to the worker (the handshake's own are dropped). */
  headers: HeaderPairs;
  /** Builds the error answer of a failed upgrade. */
  onError: ErrorHandler;
  /** Worker name, for logs and error messages. */
  worker: string;
  /** The instance's origin, `http://host:port`. */
  origin: string;
  /** Releases the acquired instance; called once, when the worker's connection ended or the upgrade failed. */
  release: () => void;
  /** Milliseconds to wait for the worker to accept the WebSocket before answering 504. */
  timeoutMs: number;
  /** A message over this size closes both legs with 1009. */
  maxMessageBytes: number;
  /** Request id for error answers and logs. */
  requestId: string;
  /** Where failures are logged. */
  logger: Logger;
  /** Open bridges; each leaves the set when its worker connection ended. */
  open: Set<WebSocketBridge>;
}

/** Truncates a close reason to the 123 bytes a close frame can carry. */
function sendableReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= 123) return reason;
  return new TextDecoder().decode(bytes.slice(0, 120)).replace(/\uFFFD+$/, "");
}

/**
 * Proxies a WebSocket upgrade: opens the worker leg first (offering the
 * client's subprotocols), then upgrades the client with the subprotocol the
 * worker chose and relays messages and the close both ways (see the module
 * doc for the close codes). The request counts as in flight until the
 * worker's connection has ended.
 */
export async function proxyWebSocket(
  req: Request,
  options: WebSocketProxyOptions,
): Promise<Response> {
  const { worker, origin, release, timeoutMs, requestId, logger, onError } =
    options;
  const offered = req.headers.get("sec-websocket-protocol");
  const protocols = offered === null
    ? []
    : offered.split(",").map((p) => p.trim()).filter((p) => p !== "");
  const { hostname, port } = new URL(origin);
  let back: WebSocketClient;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    back = await connectWebSocket({
      hostname: hostname.replace(/^\[|\]$/g, ""),
      port: Number(port || "80"),
      target: options.target,
      headers: options.headers.filter((pair) => !HANDSHAKE.has(pair[0])),
      protocols,
      maxMessageBytes: options.maxMessageBytes,
      signal,
    });
  } catch (err) {
    release();
    if (signal.aborted) {
      logger.warn("worker timed out", {
        worker,
        timeout_ms: timeoutMs,
        request_id: requestId,
      });
      return onError(req, {
        status: 504,
        message:
          `Worker "${worker}" did not accept the WebSocket within ${timeoutMs} ms`,
        requestId,
        cause: err,
      });
    }
    if (err instanceof WebSocketHandshakeError) {
      logger.warn("worker refused websocket", {
        worker,
        status: err.status || undefined,
        error: err.message,
        request_id: requestId,
      });
      return onError(req, {
        status: 502,
        message: `Worker "${worker}" refused the WebSocket`,
        requestId,
        cause: err,
      });
    }
    logger.warn("worker unreachable", {
      worker,
      error: describeError(err),
      request_id: requestId,
    });
    return onError(req, {
      status: 502,
      message: `Worker "${worker}" is unreachable`,
      requestId,
      cause: err,
    });
  }
  let front: WebSocket;
  let response: Response;
  try {
    ({ socket: front, response } = Deno.upgradeWebSocket(
      req,
      back.protocol ? { protocol: back.protocol } : {},
    ));
  } catch (err) {
    back.close(1006);
    release();
    return onError(req, {
      status: 400,
      message: `Bad WebSocket upgrade: ${describeError(err)}`,
      requestId,
      cause: err,
    });
  }
  front.binaryType = "arraybuffer";
  bridge(front, back, options);
  return response;
}

/** Relays messages and the close between the client's socket and the worker's. */
function bridge(
  front: WebSocket,
  back: WebSocketClient,
  options: WebSocketProxyOptions,
): void {
  const { worker, origin, release, requestId, logger, open } = options;
  const max = options.maxMessageBytes;
  let resolveEnded = () => {};
  const ended = new Promise<void>((resolve) => resolveEnded = resolve);
  // The worker may speak, or close, before the client's side is open.
  let queue: (string | Uint8Array<ArrayBuffer>)[] | undefined = [];
  let frontClose: [number | undefined, string] | undefined;
  let closing = false;

  const closeFront = (code: number | undefined, reason: string) => {
    if (queue !== undefined) {
      frontClose ??= [code, reason];
      return;
    }
    if (front.readyState >= WebSocket.CLOSING) return;
    if (code === undefined) front.close();
    else front.close(code, sendableReason(reason));
  };
  const tooBig = (from: "client" | "worker", size: number) => {
    const fields = {
      worker,
      from,
      size,
      limit: max,
      request_id: requestId,
    };
    // What any client can send is a debug line; a worker's is the operator's.
    if (from === "client") logger.debug("websocket message too large", fields);
    else logger.warn("websocket message too large", fields);
  };
  const self: WebSocketBridge = {
    origin,
    ended,
    close(code, reason) {
      if (closing) return;
      closing = true;
      closeFront(code, reason);
      back.close(code, sendableReason(reason));
    },
  };
  open.add(self);

  front.onopen = () => {
    for (const data of queue ?? []) front.send(data);
    queue = undefined;
    if (frontClose !== undefined) closeFront(...frontClose);
  };
  front.onmessage = (e: MessageEvent<string | ArrayBuffer>) => {
    const data = e.data;
    const size = typeof data === "string"
      ? (data.length * 3 > max ? new TextEncoder().encode(data).length : 0)
      : data.byteLength;
    if (size > max) {
      tooBig("client", size);
      self.close(1009, "Message too big");
      return;
    }
    back.send(data);
  };
  front.onerror = (e) => {
    const message = (e as ErrorEvent).message ?? "";
    if (/too large/i.test(message)) {
      // Deno's own limit: the client's connection is already dropped.
      tooBig("client", DENO_WS_MAX_BYTES + 1);
      closing = true;
      back.close(1009, "Message too big");
    }
  };
  front.onclose = (e) => {
    if (closing) return;
    closing = true;
    const code = e.code;
    if (code === 1005) back.close();
    else if (isSendableCloseCode(code)) {
      back.close(code, sendableReason(e.reason));
    } else back.close(1006); // The client vanished: so does its worker connection.
  };
  back.start({
    onmessage(data) {
      if (queue !== undefined) queue.push(data);
      else if (front.readyState === WebSocket.OPEN) front.send(data);
    },
    onclose(code, reason, size) {
      open.delete(self);
      release();
      resolveEnded();
      if (size !== undefined) tooBig("worker", size);
      if (closing) return;
      closing = true;
      if (code === 1006) {
        logger.warn("worker websocket lost", { worker, request_id: requestId });
        closeFront(1011, "Worker connection lost");
      } else closeFront(code === 1005 ? undefined : code, reason);
    },
  });
}

/** Options for {@linkcode WebSocketRelay}. */
export interface WebSocketRelayOptions {
  /** Read on every upgrade: a reload changes `maxWebSocketMessageBytes` in place. */
  settings: Readonly<{ maxWebSocketMessageBytes: number }>;
  /** Where failures are logged. */
  logger: Logger;
  /** Builds the error answer of a failed upgrade. */
  onError: ErrorHandler;
}

/** The proxied WebSockets: opens them and keeps the open ones, to close on stop or replace. */
export class WebSocketRelay {
  #open = new Set<WebSocketBridge>();
  #options: WebSocketRelayOptions;

  constructor(options: WebSocketRelayOptions) {
    this.#options = options;
  }

  /**
   * Proxies the WebSocket upgrade `req` to an instance of `ctx.upstream`
   * (503 when none is healthy).
   *
   * @param ctx The request's context: `upstream`, `target`, `fields` and
   *   `forwarding` set.
   */
  forward(req: Request, ctx: RequestContext): Promise<Response> {
    const { settings, logger, onError } = this.#options;
    const upstream = ctx.upstream!;
    const forwarding = ctx.forwarding!;
    const instance = upstream.acquire();
    if (instance === undefined) {
      return Promise.resolve(onError(req, unavailable(ctx)));
    }
    return proxyWebSocket(req, {
      target: ctx.target,
      headers: upstreamHeaders(ctx.fields!, forwarding),
      onError,
      origin: instance.origin,
      release: () => instance.release(),
      timeoutMs: upstream.writeTimeoutMs,
      maxMessageBytes: settings.maxWebSocketMessageBytes,
      logger,
      requestId: forwarding.requestId,
      worker: upstream.name,
      open: this.#open,
    });
  }

  /** Closes every proxied WebSocket with 1001 "going away", both legs. */
  closeAll(): void {
    for (const socket of this.#open) socket.close(1001, "Server shutting down");
  }

  /**
   * Closes the WebSockets connected to the instance at `origin` with 1012
   * "service restart", each at a random moment in the second half of
   * `drainMs`; resolves once their worker connections have ended.
   */
  retire(origin: string, drainMs: number): Promise<void> {
    const retiring = [...this.#open].filter((s) => s.origin === origin);
    if (retiring.length === 0) return Promise.resolve();
    for (const socket of retiring) {
      // Spread over the second half of the window: messages in flight get
      // at least half of it, and a thousand clients do not reconnect in
      // the same millisecond.
      const delay = drainMs / 2 + Math.random() * (drainMs / 2);
      const timer = setTimeout(
        () => socket.close(1012, "Service restart"),
        delay,
      );
      socket.ended.then(() => clearTimeout(timer));
    }
    return Promise.all(retiring.map((s) => s.ended)).then(() => {});
  }
}
