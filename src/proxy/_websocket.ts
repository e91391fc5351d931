import type { Logger } from "../log/logger.ts";
import { describeError, errorResponse } from "./_errors.ts";
import type { HeaderPairs } from "./_headers.ts";

/** Handshake fields the WebSocket client computes itself; never copied upstream. */
const HANDSHAKE: ReadonlySet<string> = new Set([
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "accept-encoding",
  "content-length",
]);

/** What {@linkcode proxyWebSocket} needs besides the request. */
export interface WebSocketProxyOptions {
  /** Worker name, for logs and error messages. */
  worker: string;
  /** Releases the acquired instance; called once, when the sockets close or the upgrade fails. */
  release: () => void;
  /** Milliseconds to wait for the worker to accept the WebSocket before answering 504. */
  timeoutMs: number;
  /** Request id for error answers and logs. */
  requestId: string;
  /** Where failures are logged. */
  logger: Logger;
  /** Open client sockets, so a stopping server can close them; each leaves the set when it closes. */
  open?: Set<WebSocket>;
}

/** A close code that `WebSocket.close()` accepts: 1000 or 3000–4999. */
function sendableCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

/** Truncates a close reason to the 123 bytes a close frame can carry. */
function sendableReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= 123) return reason;
  return new TextDecoder().decode(bytes.slice(0, 120)).replace(/\uFFFD+$/, "");
}

type Opened = "open" | "failed" | "timeout";

function waitOpen(socket: WebSocket, ms: number): Promise<Opened> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("timeout"), ms);
    const done = (outcome: Opened) => {
      clearTimeout(timer);
      socket.onopen = socket.onerror = socket.onclose = null;
      resolve(outcome);
    };
    socket.onopen = () => done("open");
    socket.onerror = () => done("failed");
    socket.onclose = () => done("failed");
  });
}

/**
 * Proxies a WebSocket upgrade: opens a WebSocket to the worker first (offering
 * the client's subprotocols), then upgrades the client with the subprotocol
 * the worker chose, forwards messages both ways and closes both ends together.
 * The request counts as in flight until the sockets close.
 */
export async function proxyWebSocket(
  req: Request,
  url: string,
  headers: HeaderPairs,
  options: WebSocketProxyOptions,
): Promise<Response> {
  const { worker, release, timeoutMs, requestId, logger } = options;
  const offered = req.headers.get("sec-websocket-protocol");
  const protocols = offered === null
    ? []
    : offered.split(",").map((p) => p.trim()).filter((p) => p !== "");
  const handshake = headers.filter((pair) => !HANDSHAKE.has(pair[0]));
  let back: WebSocket;
  try {
    back = new WebSocket("ws" + url.slice(url.indexOf(":")), {
      protocols,
      headers: handshake,
    });
  } catch (err) {
    release();
    logger.warn("worker unreachable", {
      worker,
      error: describeError(err),
      request_id: requestId,
    });
    return errorResponse(req, 502, `Worker "${worker}" is unreachable`, {
      requestId,
    });
  }
  back.binaryType = "arraybuffer";
  const opened = await waitOpen(back, timeoutMs);
  if (opened !== "open") {
    back.close();
    release();
    if (opened === "timeout") {
      logger.warn("worker timed out", {
        worker,
        timeout_ms: timeoutMs,
        request_id: requestId,
      });
      return errorResponse(
        req,
        504,
        `Worker "${worker}" did not accept the WebSocket within ${timeoutMs} ms`,
        { requestId },
      );
    }
    logger.warn("worker refused websocket", { worker, request_id: requestId });
    return errorResponse(
      req,
      502,
      `Worker "${worker}" refused the WebSocket`,
      { requestId },
    );
  }
  let front: WebSocket;
  let response: Response;
  try {
    ({ socket: front, response } = Deno.upgradeWebSocket(
      req,
      back.protocol ? { protocol: back.protocol } : {},
    ));
  } catch (err) {
    back.close();
    release();
    return errorResponse(
      req,
      400,
      `Bad WebSocket upgrade: ${describeError(err)}`,
      { requestId },
    );
  }
  front.binaryType = "arraybuffer";
  bridge(front, back, release, options.open);
  return response;
}

/** Forwards messages between two sockets and closes each when the other closes. */
function bridge(
  front: WebSocket,
  back: WebSocket,
  release: () => void,
  open: Set<WebSocket> | undefined,
): void {
  open?.add(front);
  // The worker may speak before the client's side is open: queue until then.
  let queue: (string | ArrayBuffer)[] | undefined = [];
  let released = false;
  const closeBoth = (code: number, reason: string) => {
    if (!released) {
      released = true;
      open?.delete(front);
      release();
    }
    const c = sendableCode(code);
    const r = sendableReason(reason);
    for (const socket of [front, back]) {
      if (socket.readyState < WebSocket.CLOSING) socket.close(c, r);
    }
  };
  front.onopen = () => {
    for (const data of queue ?? []) front.send(data);
    queue = undefined;
  };
  back.onmessage = (e: MessageEvent<string | ArrayBuffer>) => {
    if (queue !== undefined) queue.push(e.data);
    else if (front.readyState === WebSocket.OPEN) front.send(e.data);
  };
  front.onmessage = (e: MessageEvent<string | ArrayBuffer>) => {
    if (back.readyState === WebSocket.OPEN) back.send(e.data);
  };
  front.onclose = (e) => closeBoth(e.code, e.reason);
  back.onclose = (e) => closeBoth(e.code, e.reason);
  front.onerror = () => closeBoth(1011, "");
  back.onerror = () => closeBoth(1011, "");
}
