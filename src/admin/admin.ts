import { join, normalize } from "node:path";
import { contentTypeFor } from "../static/mod.ts";
import type { WorkerStatusJson } from "../supervisor/mod.ts";

/** JSON of `GET /api/status` (SPEC §10). */
export interface ServerStatusJson {
  mode: string;
  pid: number;
  version: string;
  started_at: string;
  port: number;
  workers: WorkerStatusJson[];
}

/** Options for {@linkcode createAdminHandler}. */
export interface AdminHandlerOptions {
  /** Current status. */
  status: () => ServerStatusJson;
  /** Runs the same check as SIGHUP; resolves with its report. */
  reload: () => Promise<unknown>;
  /** Folder of the dashboard files (`server/public/admin`). */
  dashboardDir: string;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
    },
  });
}

function metric(
  lines: string[],
  name: string,
  help: string,
  type: string,
  samples: [string, number][],
): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, value] of samples) {
    lines.push(`${name}${labels} ${value}`);
  }
}

/** Renders the status as Prometheus text exposition format. */
export function renderMetrics(status: ServerStatusJson): string {
  const lines: string[] = [];
  const label = (w: WorkerStatusJson) =>
    `{worker="${w.name}",route="${w.route}"}`;
  metric(lines, "tqserver_info", "Server information.", "gauge", [
    [`{version="${status.version}",mode="${status.mode}"}`, 1],
  ]);
  metric(lines, "tqserver_start_time_seconds", "Server start time.", "gauge", [
    ["", Math.floor(Date.parse(status.started_at) / 1000)],
  ]);
  metric(
    lines,
    "tqserver_worker_requests_total",
    "Requests proxied to the worker.",
    "counter",
    status.workers.map((w) => [label(w), w.requests]),
  );
  metric(
    lines,
    "tqserver_worker_in_flight",
    "Requests in flight to the worker.",
    "gauge",
    status.workers.map((w) => [label(w), w.in_flight]),
  );
  metric(
    lines,
    "tqserver_worker_restarts_total",
    "Restarts of the worker.",
    "counter",
    status.workers.map((w) => [label(w), w.restarts]),
  );
  metric(
    lines,
    "tqserver_worker_up",
    "1 when the worker has a healthy instance.",
    "gauge",
    status.workers.map((w) => [label(w), w.status === "healthy" ? 1 : 0]),
  );
  return lines.join("\n") + "\n";
}

async function serveDashboard(
  dir: string,
  pathname: string,
): Promise<Response> {
  const rel = pathname === "/"
    ? "index.html"
    : decodeURIComponent(pathname.slice(1));
  const path = normalize(join(dir, rel));
  if (!path.startsWith(dir + "/") || rel.includes("\0")) {
    return new Response("Not found\n", { status: 404 });
  }
  try {
    const body = await Deno.readFile(path);
    return new Response(body, {
      headers: {
        "content-type": contentTypeFor(path),
      },
    });
  } catch {
    return new Response("Not found\n", { status: 404 });
  }
}

/**
 * The admin listener's handler: dashboard, `/api/status`, `/api/reload`,
 * `/metrics`.
 *
 * @example
 * ```ts
 * Deno.serve({ hostname: "127.0.0.1", port: 8081 }, createAdminHandler({ status, reload, dashboardDir }));
 * ```
 */
export function createAdminHandler(
  options: AdminHandlerOptions,
): (req: Request) => Promise<Response> {
  const { status, reload, dashboardDir } = options;
  return async (req) => {
    const { pathname } = new URL(req.url);
    try {
      if (pathname === "/api/status") {
        if (req.method !== "GET" && req.method !== "HEAD") {
          return json({ error: "Use GET" }, 405);
        }
        return json(status());
      }
      if (pathname === "/api/reload") {
        if (req.method !== "POST") return json({ error: "Use POST" }, 405);
        return json({ ok: true, report: await reload() });
      }
      if (pathname === "/metrics") {
        return new Response(renderMetrics(status()), {
          headers: {
            "content-type": "text/plain; version=0.0.4; charset=utf-8",
          },
        });
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        return json({ error: "Not found" }, 404);
      }
      return await serveDashboard(dashboardDir, pathname);
    } catch (err) {
      return json(
        { error: err instanceof Error ? err.message : String(err) },
        500,
      );
    }
  };
}
