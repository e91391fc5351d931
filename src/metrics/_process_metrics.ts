// Folder-private: the standard Prometheus process_* metrics of the server
// and its workers, declared on a registry and filled at each scrape.
import type { Registry } from "./registry.ts";
import type { ProcessUsage } from "./process_stats.ts";

/**
 * The standard Prometheus process metrics (as client libraries name them),
 * for the server (no label) and per worker (`worker`, summed over its
 * instances' process groups; a restart starts its CPU counter again).
 */
export function declareProcessMetrics(r: Registry) {
  const labels = ["worker"];
  const cpu = r.counter({
    name: "process_cpu_seconds_total",
    help:
      "User and system CPU time spent, seconds: the server's (no label) or a worker's process groups.",
    labels,
  });
  const rss = r.gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes: the server's or a worker's.",
    labels,
  });
  const virt = r.gauge({
    name: "process_virtual_memory_bytes",
    help: "Virtual memory size in bytes: the server's or a worker's.",
    labels,
  });
  const start = r.gauge({
    name: "process_start_time_seconds",
    help:
      "Start time of the process since the epoch, seconds: the server's or a worker's oldest.",
    labels,
  });
  const openFds = r.gauge({
    name: "process_open_fds",
    help: "Open file descriptors of the server.",
  });
  const maxFds = r.gauge({
    name: "process_max_fds",
    help: "Maximum number of open file descriptors of the server.",
  });
  return {
    collect(
      usage: (ProcessUsage & { openFds?: number; maxFds?: number }) | undefined,
      worker: string,
    ): void {
      if (worker === "") {
        // The server comes first in each collection: start from scratch, so a removed worker's samples go.
        for (const m of [cpu, rss, virt, start]) m.reset();
      }
      if (!usage) return;
      const l = { worker };
      cpu.inc(l, usage.cpuSeconds);
      rss.set(l, usage.rssBytes);
      virt.set(l, usage.virtualBytes);
      start.set(l, usage.startTimeSeconds);
      if (usage.openFds !== undefined) openFds.set({}, usage.openFds);
      if (usage.maxFds) maxFds.set({}, usage.maxFds);
    },
  };
}
