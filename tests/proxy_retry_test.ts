// Requests that fail because a worker connection or instance went away are
// resent, never answered 502: a Node worker that closes every idle keep-alive
// connection 1 ms after answering, and a Python worker killed under GET load.
import assert from "node:assert/strict";
import { makeProject, startServer, waitFor } from "./_helpers.ts";
import { startLoad } from "./_load.ts";
import {
  hasCommand,
  NODE_WORKER,
  PY_WORKER,
  writeScriptWorker,
} from "./_workers.ts";

Deno.test({
  name:
    "a worker that closes idle connections after each request never causes a 502",
  ignore: !hasCommand("node"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const project = makeProject({ workers: {} });
    writeScriptWorker(project.root, "node", ["node", NODE_WORKER], {
      IDLE_MS: "1",
    });
    const server = await startServer(project);
    try {
      const failures: string[] = [];
      let ok = 0;
      const check = async (res: Response, what: string) => {
        await res.body?.cancel();
        if (res.status === 200) ok++;
        else failures.push(`${what}: ${res.status}`);
      };
      // Back to back (the worker closes while the next request is on its way)…
      const rapid = async () => {
        for (let i = 0; i < 100; i++) {
          const method = ["GET", "HEAD", "OPTIONS"][i % 3]!;
          await check(
            await fetch(`${server.base}/node/r${i}`, { method }),
            method,
          );
        }
      };
      await Promise.all([rapid(), rapid(), rapid()]);
      // …and with pauses the worker's idle close falls into, POSTs included.
      for (let i = 0; i < 40; i++) {
        // The pauses are the behaviour under test, not a wait.
        await new Promise((r) => setTimeout(r, 2 + (i % 4) * 5));
        const method = i % 2 ? "POST" : "GET";
        await check(
          await fetch(`${server.base}/node/p${i}`, {
            method,
            ...(method === "POST" ? { body: "0123456789" } : {}),
          }),
          method,
        );
      }
      assert.deepEqual(failures, []);
      assert.equal(ok, 340);
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});

Deno.test({
  name: "a worker crash under GET load fails no GET",
  ignore: !hasCommand("python3"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const project = makeProject({ workers: {} });
    writeScriptWorker(project.root, "py", ["python3", PY_WORKER]);
    const server = await startServer(project);
    try {
      const first = (await server.status()).workers[0]!;
      assert.ok(first.pid);
      const load = startLoad(`${server.base}/py/echo`, { concurrency: 6 });
      await waitFor(() => load.count() > 50, 10_000, "load to get going");
      Deno.kill(first.pid, "SIGKILL");
      const replaced = await waitFor(
        async () => {
          const w = (await server.status()).workers[0]!;
          return w.status === "healthy" && w.pid !== first.pid ? w : undefined;
        },
        15_000,
        "a replacement instance",
      );
      const seen = load.count();
      await waitFor(() => load.count() > seen + 50, 10_000, "more load");
      const result = await load.stop();
      assert.equal(result.failed, 0, result.errors.join("\n"));
      assert.ok(result.ok > 100, `only ${result.ok} requests`);
      assert.equal(replaced.last_restart_reason, "crashed");
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});
