import assert from "node:assert/strict";
import { ProcessStats } from "./process_stats.ts";
import { ServerMetrics } from "./server_metrics.ts";
import { waitFor } from "../../tests/_helpers.ts";

const linux = Deno.build.os === "linux";

Deno.test({
  name:
    "ProcessStats sums a process group (a worker and what it spawned) and reads the server itself",
  ignore: !linux,
  fn: async () => {
    // A shell leading its own group, with a child of its own.
    const child = new Deno.Command("sh", {
      args: ["-c", "sleep 30 & wait"],
      detached: true,
      stdin: "null",
    }).spawn();
    try {
      const stats = new ProcessStats({ maxAgeMs: 0 });
      await waitFor(
        () => stats.group(child.pid)?.processes === 2,
        5000,
        "the shell and its child in the group",
      );
      const group = stats.group(child.pid);
      assert.ok(group, "no usage for the group");
      assert.equal(group.processes, 2);
      assert.ok(group.rssBytes > 100_000, `rss ${group.rssBytes}`);
      assert.ok(group.cpuSeconds >= 0);
      assert.ok(
        Math.abs(group.startTimeSeconds - Date.now() / 1000) < 60,
        `start ${group.startTimeSeconds}`,
      );
      const self = stats.self()!;
      assert.ok(self.rssBytes > 10_000_000, `server rss ${self.rssBytes}`);
      assert.ok(self.cpuSeconds > 0);
      assert.ok(self.openFds > 2 && self.maxFds >= self.openFds);
      assert.equal(stats.group(2 ** 30), undefined);
    } finally {
      Deno.kill(-child.pid, "SIGKILL");
      await child.status;
    }
  },
});

Deno.test({
  name:
    "/metrics carries the standard process_* metrics for the server (unlabelled) and per worker",
  ignore: !linux,
  fn: () => {
    const metrics = new ServerMetrics({
      processStats: new ProcessStats(),
      source: () => ({
        version: "0",
        mode: "prod",
        started_at: new Date().toISOString(),
        workers: [{
          name: "index",
          status: "healthy",
          // This test process stands in for a worker: it leads no group, so
          // its group is whichever it was started in.
          instances: [{
            pid: Number(
              Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(
                " ",
              )[2],
            ),
          }],
        }],
      } as never),
    });
    const text = metrics.render();
    for (
      const name of [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
      ]
    ) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, "m"));
      assert.match(
        text,
        new RegExp(`^${name} \\d`, "m"),
        `${name} of the server`,
      );
    }
    assert.match(
      text,
      /^process_resident_memory_bytes\{worker="index"\} \d+$/m,
    );
    assert.match(text, /^process_cpu_seconds_total\{worker="index"\} [\d.]+$/m);
  },
});
