// Folder-private: which log records become timeline events, and their sentences.
// The log is the one record of what happened; the timeline is a view of it, so
// the file log and the dashboard cannot disagree.
import type { LogRecord } from "../log/mod.ts";
import type { NewAdminEvent } from "./events.ts";

function str(value: unknown): string {
  if (value === undefined || value === null) return "";
  return value instanceof Error ? value.message : String(value);
}

function where(f: Record<string, unknown>): string {
  const file = str(f.file);
  if (!file) return "";
  return f.line ? `${file}:${str(f.line)}: ` : `${file}: `;
}

/** The timeline event a log record stands for, or undefined for the rest. */
export function eventFromRecord(record: LogRecord): NewAdminEvent | undefined {
  const { msg, fields: f } = record;
  const worker = typeof f.worker === "string" ? f.worker : undefined;
  const w = worker ?? "";
  const ev = (type: NewAdminEvent["type"], message: string): NewAdminEvent => ({
    type,
    ...(worker ? { worker } : {}),
    message,
    fields: f,
  });
  switch (msg) {
    case "tqserver ready":
      return ev(
        "server",
        `Server ready on ${str(f.url)}, ${str(f.workers)} workers`,
      );
    case "tqserver stopping":
      return ev("server", `Server stopping (${str(f.reason)})`);
    case "worker started":
      return ev(
        "start",
        `${w} started in ${str(f.ms)} ms (pid ${str(f.pid)}, port ${
          str(f.port)
        })`,
      );
    case "worker replaced":
      return ev(
        "replace",
        `${w} replaced (${str(f.reason)}) in ${str(f.ms)} ms: pid ${
          str(f.old_pid) || "none"
        } → ${str(f.pid)}`,
      );
    case "worker start failed":
      return ev(
        "replace-failed",
        `${w} failed to start (${str(f.reason)}): ${str(f.error)}${
          f.kept_old ? "; the old instance keeps serving" : ""
        }`,
      );
    case "worker cannot start":
      return ev("replace-failed", `${w} cannot start: ${str(f.error)}`);
    case "worker crashed":
      return ev("crash", `${w} crashed (pid ${str(f.pid)}): ${str(f.error)}`);
    case "worker state":
      if (f.to !== "failed" && f.to !== "unhealthy") return undefined;
      return ev("state", `${w} is ${str(f.to)}: ${str(f.error)}`);
    case "worker signalled":
      return ev(
        "signal",
        `${w} sent ${str(f.signal)} (${str(f.reason)}), pid ${str(f.pid)}`,
      );
    case "build":
      if (f.status !== "built") return undefined;
      return ev("build", `${w} built in ${str(f.ms)} ms`);
    case "worker build failed":
    case "build failed, old instance keeps serving":
      return ev("build-error", `${w} build failed: ${where(f)}${str(f.error)}`);
    case "config reloaded":
      return ev("config", "Config reloaded");
    case "config rejected, keeping the old one":
      return ev(
        "config",
        `Config rejected, keeping the old one: ${str(f.error)}`,
      );
    case "restart requested":
      return ev("restart-requested", `${w} restart requested (${str(f.via)})`);
  }
  if (/^\[\d+\/\d+\] /.test(msg) && f.status === "built") {
    return ev("build", `${w} built in ${str(f.ms)} ms`);
  }
  if (msg.startsWith("checked ") && typeof f.workers === "number") {
    return ev("reload", `Reload check: ${msg}`);
  }
  return undefined;
}
