import { existsSync } from "node:fs";
import { join } from "node:path";
import type { LogRecord } from "../log/mod.ts";
import { routeMatches } from "../routes/mod.ts";
import type { Supervisor } from "../supervisor/mod.ts";
import { type LiveReload, SCRIPT_TAG } from "./livereload.ts";

/** Options for {@linkcode StartProblems}. */
export interface StartProblemsOptions {
  /** Where the problems go (the overlay). */
  live: LiveReload;
  /** The workers, for the page a route without an instance answers. */
  supervisor: Pick<Supervisor, "workers">;
  /** The project root (a skipped folder is looked for there). */
  root: string;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** What a worker needs to pass its health check, in words. */
const HEALTH_HINT =
  "A worker listens on 127.0.0.1 at the port in $TQ_PORT (or $PORT) and answers GET /health (workers.default.health_path) with a 2xx status once it is ready.";

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(
    />/g,
    "&gt;",
  );
}

/**
 * Failures that only the log used to tell, shown on the page in dev through
 * the same overlay as build errors and crashes (SSE `error` events) and kept
 * in `last_error` by the supervisor: a worker that never became healthy or
 * cannot start (kind `start`), and a worker folder that was skipped (kind
 * `folder`, e.g. an invalid name). It reads the server's log records, so the
 * page says what the log says. A route whose worker cannot start answers at
 * once with a page that shows its `last_error`, instead of waiting for an
 * instance that is not coming.
 */
export class StartProblems {
  #live: LiveReload;
  #supervisor: Pick<Supervisor, "workers">;
  #root: string;
  /** Workers whose start problem is shown, and whether an old instance kept serving. */
  #shown = new Map<string, boolean>();
  /** Skipped folders shown, by the root-relative path the warning named. */
  #folders = new Set<string>();

  constructor(options: StartProblemsOptions) {
    const { live, supervisor, root } = options;
    this.#live = live;
    this.#supervisor = supervisor;
    this.#root = root;
  }

  /** Feeds one server log record. */
  observe(record: LogRecord): void {
    const { msg, fields: f } = record;
    const worker = typeof f.worker === "string" ? f.worker : "";
    switch (msg) {
      case "worker start failed":
      case "worker cannot start": {
        const error = String(f.error ?? "").replace(ANSI, "");
        // A process that exited is shown by the crash report, with its output.
        if (!worker || /^(Exited during startup|Start cancelled)/.test(error)) {
          return;
        }
        const keptOld = f.kept_old === true;
        this.#shown.set(worker, keptOld);
        this.#live.emit({
          type: "error",
          kind: "start",
          worker,
          message: `${error}\n\n${HEALTH_HINT}\n\n${
            keptOld
              ? "The previous instance keeps serving."
              : "Its route answers 503 until an instance is healthy; tqserver keeps retrying."
          }`,
        });
        return;
      }
      case "worker started":
      case "worker replaced": {
        const keptOld = this.#shown.get(worker);
        if (keptOld === undefined) return;
        this.#shown.delete(worker);
        this.#live.emit({ type: "ok", kind: "start", worker });
        // A page that showed the 503 gets the worker now.
        if (!keptOld) this.#live.emit({ type: "reload", reason: "started" });
        return;
      }
      case "worker skipped": {
        const problem = String(f.problem ?? "");
        const path = /^Skipped "(.+?)":/.exec(problem)?.[1];
        // A mistake to show: a name that cannot be a worker's, a binary that
        // cannot run. A folder that holds no worker (yet) is left to the log.
        if (!path || !/folder name|not executable/.test(problem)) return;
        this.#folders.add(path);
        this.#live.emit({
          type: "error",
          kind: "folder",
          worker: path,
          message:
            `${problem}\n\nUntil then it is no worker, and its URL is answered by whichever worker's route covers it.`,
        });
        return;
      }
    }
    if (msg.startsWith("checked ")) {
      // A renamed or removed folder's warning is not logged again: clear it.
      for (const path of this.#folders) {
        if (existsSync(join(this.#root, path))) continue;
        this.#folders.delete(path);
        this.#live.emit({ type: "ok", kind: "folder", worker: path });
      }
    }
  }

  /**
   * The answer for `pathname` when its worker has no instance and cannot
   * start (never healthy, no binary): at once, saying why, rather than after
   * the proxy's wait for an instance. Undefined otherwise.
   */
  response(pathname: string, req?: Request): Response | undefined {
    let best: { route: string; name: string; error: string } | undefined;
    for (const entry of this.#supervisor.workers.values()) {
      if (!routeMatches(entry.route, pathname)) continue;
      if (best && entry.route.length <= best.route.length) continue;
      best = { route: entry.route, name: entry.name, error: "" };
      // Not after a crash: its restart comes within ms, and the proxy waits
      // for it (the crash shows in the overlay meanwhile). A worker that
      // never got healthy makes every request wait its startup timeout.
      const status = entry.state.status;
      if (
        entry.active.length === 0 && entry.lastError &&
        (status === "failed" ||
          (status === "crashed" && this.#shown.get(entry.name) === false))
      ) best.error = entry.lastError.replace(ANSI, "");
    }
    if (!best?.error) return undefined;
    const headers = {
      "cache-control": "no-store",
      "retry-after": "1",
      "x-tq-problem": best.name,
    };
    if (!(req?.headers.get("accept") ?? "").includes("text/html")) {
      return Response.json(
        {
          error: `No healthy instance of worker "${best.name}"`,
          last_error: best.error,
        },
        { status: 503, headers },
      );
    }
    const name = escapeHtml(best.name);
    return new Response(
      `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${name} is not running</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#222}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem;border-radius:6px}</style></head>
<body><main><h1>Worker <code>${name}</code> is not running</h1>
<pre id="last-error">${escapeHtml(best.error)}</pre>
<p>${escapeHtml(HEALTH_HINT)}</p>
<p>This page reloads by itself once the worker serves.</p></main>${SCRIPT_TAG}</body></html>
`,
      {
        status: 503,
        headers: { ...headers, "content-type": "text/html; charset=utf-8" },
      },
    );
  }
}
