// Folder-private: the `/api/stream` Server-Sent Events feed of the dashboard.
import type { AdminEvent, EventLog } from "./events.ts";

const encoder = new TextEncoder();

/** Bytes queued for one stream client before it is dropped. */
const MAX_QUEUED_BYTES = 1 << 20;

/** Options for {@linkcode StreamHub}. */
export interface StreamHubOptions {
  events: EventLog;
  /** The `status` message sent at connect and every `intervalMs`. */
  snapshot: () => unknown;
  /** Default 1000. */
  intervalMs?: number;
}

function frame(event: string, data: unknown, id?: number): Uint8Array {
  const head = id === undefined ? "" : `id: ${id}\n`;
  return encoder.encode(
    `${head}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
  );
}

/** Every open stream; each gets events as they happen and a status snapshot each interval. */
export class StreamHub {
  #events: EventLog;
  #snapshot: () => unknown;
  #intervalMs: number;
  #open = new Set<() => void>();
  #closed = false;

  constructor(options: StreamHubOptions) {
    const { events, snapshot, intervalMs = 1000 } = options;
    this.#events = events;
    this.#snapshot = snapshot;
    this.#intervalMs = intervalMs;
  }

  /** Open streams. */
  get size(): number {
    return this.#open.size;
  }

  /** A streaming response; replays events after `sinceId` (Last-Event-ID) first. */
  open(req: Request, sinceId: number): Response {
    if (this.#closed) {
      return new Response("Server is stopping\n", { status: 503 });
    }
    let finish = () => {};
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        let done = false;
        const send = (chunk: Uint8Array) => {
          if (done) return;
          // A client that stopped reading (a suspended tab, a full TCP
          // window) is dropped rather than queueing snapshots without end;
          // EventSource reconnects with Last-Event-ID and gets what it missed.
          if ((controller.desiredSize ?? 0) < -MAX_QUEUED_BYTES) {
            finish();
            return;
          }
          controller.enqueue(chunk);
        };
        const onEvent = (e: AdminEvent) => send(frame("event", e, e.id));
        const unsubscribe = this.#events.subscribe(onEvent);
        const timer = setInterval(
          () => send(frame("status", this.#snapshot())),
          this.#intervalMs,
        );
        finish = () => {
          if (done) return;
          done = true;
          clearInterval(timer);
          unsubscribe();
          this.#open.delete(finish);
          try {
            controller.close();
          } catch {
            // Already closed by the client.
          }
        };
        this.#open.add(finish);
        req.signal.addEventListener("abort", finish, { once: true });
        send(encoder.encode(`retry: 1000\n\n`));
        send(frame("status", this.#snapshot()));
        for (const e of this.#events.since(sinceId)) onEvent(e);
      },
      cancel: () => finish(),
    }, new ByteLengthQueuingStrategy({ highWaterMark: 0 }));
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }

  /** Ends every stream and refuses new ones (server shutdown). */
  close(): void {
    this.#closed = true;
    for (const finish of [...this.#open]) finish();
  }
}
