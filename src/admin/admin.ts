import { join, normalize } from "node:path";
import { type Logger, silentLogger } from "../log/mod.ts";
import {
  groupsUsage,
  type ProcessStats,
  type ResponseCounts,
  type SeriesJson,
} from "../metrics/mod.ts";
import { type ReloadReport, summarizeReload } from "../reload/mod.ts";
import { contentTypeFor } from "../static/mod.ts";
import type { WorkerStatusJson } from "../supervisor/mod.ts";
import { hasToken, refusePost } from "./_auth.ts";
import { StreamHub } from "./_stream.ts";
import type { EventLog } from "./events.ts";

/** Memory and CPU of a process, or of process groups summed; null where `/proc` is not there to read. */
export interface UsageJson {
  rss_bytes: number | null;
  cpu_seconds: number | null;
}

/** A worker in `/api/status`: the supervisor's view plus its usage and answers (SPEC §10). */
export type WorkerWithUsageJson =
  & Omit<WorkerStatusJson, "instances">
  & UsageJson
  & {
    responses: ResponseCounts;
    instances: (WorkerStatusJson["instances"][number] & UsageJson)[];
  };

/** JSON of `GET /api/status` (SPEC §10). */
export interface ServerStatusJson extends UsageJson {
  mode: string;
  pid: number;
  version: string;
  started_at: string;
  port: number;
  /** Answers of the public port by status class. */
  responses: ResponseCounts;
  workers: WorkerWithUsageJson[];
}

/** Options for {@linkcode withUsage}. */
export interface WithUsageOptions {
  /** Memory and CPU of process groups. */
  stats: ProcessStats;
  /** The worker's answers by status class. */
  responses: ResponseCounts;
}

/**
 * A worker's status with the memory and CPU of its instances' process groups
 * (each instance's, and their sum) and its answers by status class.
 */
export function withUsage(
  worker: WorkerStatusJson,
  options: WithUsageOptions,
): WorkerWithUsageJson {
  const { stats, responses } = options;
  const instances = worker.instances.map((i) => {
    const u = stats.group(i.pid);
    return {
      ...i,
      rss_bytes: u?.rssBytes ?? null,
      cpu_seconds: u?.cpuSeconds ?? null,
    };
  });
  const sum = groupsUsage(stats, worker.instances);
  return {
    ...worker,
    rss_bytes: sum?.rssBytes ?? (instances.length ? null : 0),
    cpu_seconds: sum?.cpuSeconds ?? (instances.length ? null : 0),
    responses,
    instances,
  };
}

/** JSON of `GET /api/workers/{name}/output`. */
export interface WorkerOutputJson {
  worker: string;
  instances: { pid: number; port: number; lines: string[] }[];
}

/** Options for {@linkcode createAdminHandler}. */
export interface AdminHandlerOptions {
  /** Current status. */
  status: () => ServerStatusJson;
  /** Runs the same check as SIGHUP; resolves with its report. */
  reload: () => Promise<ReloadReport>;
  /**
   * Replaces one worker with reason `manual`; resolves true when new
   * instances serve. @throws {TypeError} For an unknown worker.
   */
  restart: (name: string) => Promise<boolean>;
  /**
   * The last lines each running instance of a worker printed (stdout and
   * stderr, oldest first); undefined for an unknown worker. Default: none.
   */
  output?: (name: string) => WorkerOutputJson | undefined;
  /** The event timeline. */
  events: EventLog;
  /** Prometheus text for `/metrics`. */
  metrics: () => string;
  /** Per-worker request rate and latency of the last minute. */
  series: () => Record<string, SeriesJson>;
  /** Folder of the dashboard files (`server/public/admin`). */
  dashboardDir: string;
  /** `server.admin.token`: when set, every API call needs it as a Bearer token. Default "". */
  token?: string;
  /** Logger. Default silent. */
  logger?: Logger;
  /** How often `/api/stream` sends a status snapshot. Default 1000. */
  streamIntervalMs?: number;
}

/** The admin handler, plus `close()` that ends its open streams (shutdown). */
export interface AdminHandler {
  (req: Request): Promise<Response>;
  close(): void;
}

function json(
  body: unknown,
  status = 200,
  headers: HeadersInit = {},
): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

function methodNotAllowed(allow: string): Response {
  return json({ error: `Use ${allow}` }, 405, { allow });
}

async function serveDashboard(
  dir: string,
  pathname: string,
): Promise<Response> {
  let rel: string;
  try {
    rel = pathname === "/"
      ? "index.html"
      : decodeURIComponent(pathname.slice(1));
  } catch {
    return new Response("Bad request\n", { status: 400 });
  }
  const path = normalize(join(dir, rel));
  if (!path.startsWith(normalize(dir) + "/") || rel.includes("\0")) {
    return new Response("Not found\n", { status: 404 });
  }
  try {
    const body = await Deno.readFile(path);
    return new Response(body, {
      headers: {
        "content-type": contentTypeFor(path),
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        "content-security-policy":
          "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
      },
    });
  } catch {
    return new Response("Not found\n", { status: 404 });
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The sentence `POST /api/workers/{name}/restart` answers with. */
function restartSentence(
  name: string,
  ok: boolean,
  ms: number,
  before: WorkerWithUsageJson | undefined,
  after: WorkerWithUsageJson | undefined,
): string {
  // Those that serve: a replaced instance may still be listed, draining.
  const serving = (w: WorkerWithUsageJson | undefined) =>
    w?.instances.filter((i) =>
      i.status !== "starting" && i.status !== "stopping"
    ) ?? [];
  const pids = (w: WorkerWithUsageJson | undefined) =>
    serving(w).map((i) => i.pid).join(", ") || "none";
  if (ok) {
    return `Restarted ${name} in ${ms} ms: pid ${pids(before)} → ${
      pids(after)
    }.`;
  }
  const kept = serving(after).length > 0
    ? "The old instance keeps serving."
    : "It is not serving.";
  return `Restart of ${name} failed after ${ms} ms: ${
    after?.last_error ?? "unknown error"
  }. ${kept}`;
}

/**
 * The admin listener's handler (SPEC §10): the dashboard, `/api/status`,
 * `/api/events`, `/api/stream`, `/api/reload`, `/api/workers/{name}/restart`
 * and `/metrics`.
 *
 * @example
 * ```ts
 * const admin = createAdminHandler({ status, reload, restart, events, metrics, series, dashboardDir });
 * Deno.serve({ hostname: "127.0.0.1", port: 8081 }, admin);
 * ```
 */
export function createAdminHandler(options: AdminHandlerOptions): AdminHandler {
  const {
    status,
    reload,
    restart,
    output = () => undefined,
    events,
    metrics,
    series,
    dashboardDir,
    token = "",
    logger = silentLogger,
    streamIntervalMs = 1000,
  } = options;
  const hub = new StreamHub({
    events,
    snapshot: () => ({ status: status(), series: series() }),
    intervalMs: streamIntervalMs,
  });
  const isRead = (m: string) => m === "GET" || m === "HEAD";

  const api = async (req: Request, pathname: string): Promise<Response> => {
    if (pathname === "/metrics") {
      if (!isRead(req.method)) return methodNotAllowed("GET");
      return new Response(metrics(), {
        headers: {
          "content-type": "text/plain; version=0.0.4; charset=utf-8",
          "cache-control": "no-store",
        },
      });
    }
    if (pathname === "/api/status") {
      if (!isRead(req.method)) return methodNotAllowed("GET");
      return json(status());
    }
    if (pathname === "/api/series") {
      if (!isRead(req.method)) return methodNotAllowed("GET");
      return json({ series: series() });
    }
    if (pathname === "/api/events") {
      if (!isRead(req.method)) return methodNotAllowed("GET");
      const raw = new URL(req.url).searchParams.get("since") ?? "0";
      if (!/^\d{1,15}$/.test(raw)) {
        return json(
          { error: `"since" must be an event id, got "${raw}"` },
          400,
        );
      }
      return json({
        events: events.since(Number(raw)),
        next_id: events.nextId,
      });
    }
    if (pathname === "/api/stream") {
      if (!isRead(req.method)) return methodNotAllowed("GET");
      const last = req.headers.get("last-event-id") ??
        new URL(req.url).searchParams.get("since") ?? "";
      // A fresh dashboard fetches the history itself; a reconnect resumes after its last id.
      const since = /^\d{1,15}$/.test(last) ? Number(last) : events.nextId - 1;
      return hub.open(req, since);
    }
    if (pathname === "/api/reload") {
      if (req.method !== "POST") return methodNotAllowed("POST");
      const refused = refusePost(req, token);
      if (refused) return refusedResponse(refused);
      logger.info("reload requested", { via: "admin" });
      const report = await reload();
      const failed = report.actions.some((a) => a.action === "failed") ||
        report.config === "rejected";
      return json({
        ok: !failed,
        message: capitalize(summarizeReload(report)) + ".",
        report,
      });
    }
    const outputPath = /^\/api\/workers\/([^/]+)\/output$/.exec(pathname);
    if (outputPath) {
      if (!isRead(req.method)) return methodNotAllowed("GET");
      let name: string;
      try {
        name = decodeURIComponent(outputPath[1]!);
      } catch {
        return json({ error: "Bad worker name" }, 400);
      }
      const out = output(name);
      return out
        ? json(out)
        : json({ error: `There is no worker "${name}".` }, 404);
    }
    const restartPath = /^\/api\/workers\/([^/]+)\/restart$/.exec(pathname);
    if (restartPath) {
      if (req.method !== "POST") return methodNotAllowed("POST");
      const refused = refusePost(req, token);
      if (refused) return refusedResponse(refused);
      let name: string;
      try {
        name = decodeURIComponent(restartPath[1]!);
      } catch {
        return json({ error: "Bad worker name" }, 400);
      }
      const find = () => status().workers.find((w) => w.name === name);
      const before = find();
      if (!before) {
        return json(
          { ok: false, message: `There is no worker "${name}".` },
          404,
        );
      }
      logger.info("restart requested", { worker: name, via: "admin" });
      const started = performance.now();
      const ok = await restart(name);
      const ms = Math.round(performance.now() - started);
      const message = restartSentence(name, ok, ms, before, find());
      return json({ ok, message, ms }, ok ? 200 : 500);
    }
    return json({ error: "Not found" }, 404);
  };

  const refusedResponse = (r: { status: number; error: string }) => {
    logger.debug("admin request refused", { status: r.status, error: r.error });
    return json(
      { ok: false, message: r.error, error: r.error },
      r.status,
      r.status === 401 ? { "www-authenticate": 'Bearer realm="tqserver"' } : {},
    );
  };

  const handler = async (req: Request): Promise<Response> => {
    const { pathname } = new URL(req.url);
    try {
      if (pathname.startsWith("/api/") || pathname === "/metrics") {
        // POSTs check the token themselves, after the Origin check.
        if (token && req.method !== "POST" && !hasToken(req, token)) {
          return refusedResponse({
            status: 401,
            error: "Missing or wrong Bearer token",
          });
        }
        return await api(req, pathname);
      }
      if (!isRead(req.method)) return methodNotAllowed("GET");
      return await serveDashboard(dashboardDir, pathname);
    } catch (err) {
      logger.error("admin request failed", { path: pathname, error: err });
      return json(
        { ok: false, error: err instanceof Error ? err.message : String(err) },
        500,
      );
    }
  };
  return Object.assign(handler, { close: () => hub.close() });
}
