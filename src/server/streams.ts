/**
 * Responses that never end by themselves (Server-Sent Events: live reload,
 * a dashboard feed, a worker's own event stream), tracked so a stopping server
 * can end them instead of waiting for them until its drain timeout.
 */
export class OpenStreams {
  #open = new Set<() => void>();
  #closed = false;

  /** How many tracked streams are open. */
  get size(): number {
    return this.#open.size;
  }

  /**
   * Returns `res` unchanged unless it is an event stream; then returns one
   * that {@linkcode closeAll} can end. Once closing, an event stream ends at
   * once after a `retry` hint, so the browser reconnects (to the next server).
   * `header` reads `res`'s headers (default `res.headers.get`; the proxy's
   * reader spares its answers the cost of `res.headers`).
   */
  track(
    res: Response,
    header = (name: string) => res.headers.get(name),
  ): Response {
    // Content-Type first: reading `res.body` turns a body of bytes into a
    // stream, which costs every proxied answer Deno.serve's fast path.
    if (!isEventStream(header("content-type")) || !res.body) return res;
    if (this.#closed) {
      res.body.cancel().catch(() => {});
      return new Response(RECONNECT, {
        status: res.status,
        headers: res.headers,
      });
    }
    const reader = res.body.getReader();
    let end = () => {};
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        end = () => {
          this.#open.delete(end);
          try {
            // EventSource reconnects after a stream that ends.
            controller.close();
          } catch {
            // Already closed or errored.
          }
          reader.cancel().catch(() => {});
        };
        this.#open.add(end);
      },
      pull: async (controller) => {
        try {
          const { done, value } = await reader.read();
          if (done) {
            this.#open.delete(end);
            controller.close();
          } else controller.enqueue(value);
        } catch (err) {
          this.#open.delete(end);
          controller.error(err);
        }
      },
      cancel: (reason) => {
        this.#open.delete(end);
        return reader.cancel(reason);
      },
    });
    return new Response(body, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  }

  /** Ends every open stream and every later one (the server is stopping). */
  closeAll(): void {
    this.#closed = true;
    for (const end of [...this.#open]) end();
  }
}

const RECONNECT = new TextEncoder().encode("retry: 500\n\n");

function isEventStream(type: string | null): boolean {
  return type !== null && type.startsWith("text/event-stream");
}
