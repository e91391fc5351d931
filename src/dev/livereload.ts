import { rawPathOf, routeMatches } from "../routes/mod.ts";
/** An event pushed to browsers over `/_tq/events`. */
export type LiveEvent =
  | { type: "reload"; reason: string }
  | { type: "css"; path: string }
  | {
    type: "error";
    /** What failed: the build (default), the running worker, or a config file. */
    kind?: ProblemKind;
    worker: string;
    message: string;
    file?: string;
    line?: number;
    column?: number;
  }
  | {
    /** A problem that does not stop the reload (type errors): shown, not blocking. */
    type: "warning";
    kind: "types";
    worker: string;
    message: string;
    file?: string;
    line?: number;
    column?: number;
  }
  | { type: "ok"; kind?: ProblemKind | "types"; worker: string };

/** What an `error` event is about. */
export type ProblemKind =
  | "build"
  | "crash"
  | "config"
  /** A worker that never became healthy or cannot start. */
  | "start"
  /** A worker folder that was skipped (e.g. an invalid name). */
  | "folder";

type Problem = LiveEvent & { type: "error" | "warning" };

function problemKey(e: { kind?: string; worker: string }): string {
  return `${e.kind ?? "build"}:${e.worker}`;
}

const encoder = new TextEncoder();

/** The `error` event for a failed build of `worker`. */
export function buildErrorEvent(
  worker: string,
  error:
    | { message: string; file?: string; line?: number; column?: number }
    | undefined,
): LiveEvent {
  return {
    type: "error",
    worker,
    message: error?.message ?? "Build failed",
    ...(error?.file ? { file: error.file } : {}),
    ...(error?.line ? { line: error.line } : {}),
    ...(error?.column ? { column: error.column } : {}),
  };
}

/** The browser side: reconnecting EventSource, CSS swap, reload, error overlay. */
export const LIVERELOAD_JS = `(() => {
  "use strict";
  const errors = new Map();
  let wasConnected = false;
  function overlay() {
    let el = document.getElementById("__tq_overlay");
    if (errors.size === 0) { if (el) el.remove(); return; }
    if (!el) {
      el = document.createElement("div");
      el.id = "__tq_overlay";
      el.style.cssText = "position:fixed;inset:0;z-index:2147483647;background:rgba(20,20,24,.92);color:#f8f8f2;" +
        "font:14px/1.5 ui-monospace,monospace;padding:32px;overflow:auto;white-space:pre-wrap";
      document.documentElement.appendChild(el);
    }
    el.textContent = "";
    const blocking = [...errors.values()].some((e) => e.type === "error");
    // Warnings alone (type errors) sit in a corner and leave the page usable.
    el.style.cssText = blocking
      ? "position:fixed;inset:0;z-index:2147483647;background:rgba(20,20,24,.92);color:#f8f8f2;" +
        "font:14px/1.5 ui-monospace,monospace;padding:32px;overflow:auto;white-space:pre-wrap"
      : "position:fixed;right:12px;bottom:12px;max-width:min(720px,90vw);max-height:40vh;z-index:2147483647;" +
        "background:rgba(40,34,10,.95);color:#f8f8f2;font:13px/1.45 ui-monospace,monospace;padding:16px;" +
        "overflow:auto;white-space:pre-wrap;border-left:4px solid #f0c040;border-radius:6px";
    const titles = { build: "Build failed", crash: "Worker crashed", config: "Config rejected", types: "Type errors", start: "Worker not healthy", folder: "Worker folder skipped" };
    for (const e of errors.values()) {
      const h = document.createElement("div");
      h.style.cssText = "color:" + (e.type === "error" ? "#ff6b6b" : "#f0c040") + ";font-weight:bold;margin-bottom:8px";
      h.textContent = (titles[e.kind || "build"] || "Problem") + ": " + e.worker + (e.file ? " — " + e.file + (e.line ? ":" + e.line + (e.column ? ":" + e.column : "") : "") : "");
      const m = document.createElement("div");
      m.style.marginBottom = "24px";
      m.textContent = e.message;
      el.append(h, m);
    }
  }
  function swapCss(path) {
    for (const link of document.querySelectorAll('link[rel="stylesheet"]')) {
      const url = new URL(link.href, location.href);
      if (url.pathname !== path) continue;
      url.searchParams.set("__tq", Date.now().toString(36));
      const next = link.cloneNode();
      next.href = url.href;
      next.onload = () => link.remove();
      link.after(next);
    }
  }
  const es = new EventSource("/_tq/events");
  es.addEventListener("hello", () => { if (wasConnected) location.reload(); wasConnected = true; });
  es.addEventListener("reload", () => location.reload());
  es.addEventListener("css", (ev) => swapCss(JSON.parse(ev.data).path));
  const key = (e) => (e.kind || "build") + ":" + e.worker;
  es.addEventListener("error", (ev) => { if (!ev.data) return; const e = JSON.parse(ev.data); errors.set(key(e), e); overlay(); });
  es.addEventListener("warning", (ev) => { const e = JSON.parse(ev.data); errors.set(key(e), e); overlay(); });
  es.addEventListener("ok", (ev) => { errors.delete(key(JSON.parse(ev.data))); overlay(); });
})();
`;

/** The tag that loads the live-reload client into a page. */
export const SCRIPT_TAG = `<script src="/_tq/livereload.js" defer></script>`;

/** What a new worker's route answers while its first build runs (dev). */
export function buildingPage(worker: string): string {
  const name = worker.replace(/[^a-z0-9_-]/g, "");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Building ${name}…</title>
<style>body{font:16px/1.5 system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;color:#333}
p{color:#777}</style></head>
<body><main><h1>Building <code>${name}</code>…</h1>
<p>This page reloads by itself when the worker is ready.</p></main>${SCRIPT_TAG}</body></html>
`;
}

/**
 * Live reload for dev mode: an SSE hub at `/_tq/events`, the client script at
 * `/_tq/livereload.js`, and script injection into HTML responses. Build errors
 * are remembered and sent to every browser that connects until the build succeeds.
 */
export class LiveReload {
  #clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  #errors = new Map<string, Problem>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #building = new Map<string, string>();

  /** Marks a new worker as building: its route answers the building page until {@linkcode built}. */
  building(worker: string, route: string): void {
    this.#building.set(worker, route);
  }

  /** The worker's first build is over (it starts now, or its error is shown). */
  built(worker: string): void {
    this.#building.delete(worker);
  }

  /** The building page for `pathname` when it is under a worker still building, else undefined. */
  buildingResponse(pathname: string): Response | undefined {
    let best: [string, string] | undefined;
    for (const [worker, route] of this.#building) {
      if (!routeMatches(route, pathname)) continue;
      if (!best || route.length > best[1].length) best = [worker, route];
    }
    if (!best) return undefined;
    return new Response(buildingPage(best[0]), {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "retry-after": "1",
        "x-tq-building": best[0],
      },
    });
  }

  /** Sends an event to every connected browser (and remembers problems until their `ok`). */
  emit(event: LiveEvent): void {
    if (event.type === "error" || event.type === "warning") {
      this.#errors.set(problemKey(event), event);
    }
    if (event.type === "ok") {
      if (!this.#errors.delete(problemKey(event))) return;
    }
    const bytes = encoder.encode(
      `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`,
    );
    for (const client of this.#clients) {
      try {
        client.enqueue(bytes);
      } catch {
        this.#clients.delete(client);
      }
    }
  }

  /** Answers `/_tq/livereload.js` and `/_tq/events`; 404 otherwise. */
  handle(req: Request, pathname: string): Response {
    if (pathname === "/_tq/livereload.js") {
      return new Response(LIVERELOAD_JS, {
        headers: {
          "content-type": "text/javascript; charset=utf-8",
          "cache-control": "no-cache",
        },
      });
    }
    if (pathname === "/_tq/events") return this.#events(req);
    return new Response("Not found\n", { status: 404 });
  }

  #events(req: Request): Response {
    let self: ReadableStreamDefaultController<Uint8Array>;
    const errors = [...this.#errors.values()];
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        self = controller;
        this.#clients.add(controller);
        controller.enqueue(
          encoder.encode(`retry: 500\nevent: hello\ndata: {}\n\n`),
        );
        for (const e of errors) {
          controller.enqueue(
            encoder.encode(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`),
          );
        }
        this.#heartbeat ??= setInterval(() => {
          for (const c of this.#clients) {
            try {
              c.enqueue(encoder.encode(`: ping\n\n`));
            } catch {
              this.#clients.delete(c);
            }
          }
        }, 15_000);
      },
      cancel: () => {
        this.#clients.delete(self);
      },
    });
    req.signal.addEventListener("abort", () => this.#clients.delete(self), {
      once: true,
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      },
    });
  }

  /**
   * Injects the client script into an HTML response that is not compressed;
   * a request to a worker that is still building gets the building page.
   */
  transform(res: Response, req?: Request): Response {
    if (req && this.#building.size > 0) {
      const page = this.buildingResponse(rawPathOf(req.url));
      if (page) {
        res.body?.cancel().catch(() => {});
        return page;
      }
    }
    const type = res.headers.get("content-type") ?? "";
    if (
      !type.includes("text/html") || res.headers.has("content-encoding") ||
      !res.body
    ) return res;
    const headers = new Headers(res.headers);
    headers.delete("content-length");
    const body = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(
      new TransformStream<string, string>(
        {
          injected: false,
          transform(chunk, controller) {
            const at = chunk.lastIndexOf("</body>");
            if (at >= 0 && !this.injected) {
              this.injected = true;
              controller.enqueue(
                chunk.slice(0, at) + SCRIPT_TAG + chunk.slice(at),
              );
            } else controller.enqueue(chunk);
          },
          flush(controller) {
            if (!this.injected) controller.enqueue(SCRIPT_TAG);
          },
        } as Transformer<string, string> & { injected: boolean },
      ),
    ).pipeThrough(new TextEncoderStream());
    return new Response(body, {
      status: res.status,
      statusText: res.statusText,
      headers,
    });
  }

  /** Ends every SSE stream (server stopping). */
  close(): void {
    clearInterval(this.#heartbeat);
    for (const c of this.#clients) {
      try {
        c.close();
      } catch {
        // Already closed by the browser.
      }
    }
    this.#clients.clear();
  }
}
