// Folder-private: the server's `/api/status` answer, read from the host's
// supervisor, metrics and process stats.
import { type ServerStatusJson, withUsage } from "../admin/mod.ts";
import { VERSION } from "../version.ts";
import type { ServerHost } from "./host.ts";

/** Options for {@linkcode serverStatus}. */
export interface ServerStatusOptions {
  /** When the server started. */
  startedAt: Date;
  /** The public port (0 before the server listens). */
  port: number;
}

/** Status for `/api/status`: the server's own figures and each worker's, with their usage. */
export function serverStatus(
  host: ServerHost,
  options: ServerStatusOptions,
): ServerStatusJson {
  const { startedAt, port } = options;
  const self = host.processStats.self();
  return {
    mode: host.mode,
    pid: Deno.pid,
    version: VERSION,
    started_at: startedAt.toISOString(),
    port,
    rss_bytes: self?.rssBytes ?? null,
    cpu_seconds: self?.cpuSeconds ?? null,
    responses: host.metrics.responses(),
    workers: host.supervisor.status().map((w) =>
      withUsage(w, {
        stats: host.processStats,
        responses: host.metrics.responses(w.name),
      })
    ),
  };
}
