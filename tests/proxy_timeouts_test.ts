// Timeouts of the proxy, set in a config file and checked end to end with a
// Python http.server worker: server.write_timeout_seconds (504, overridden
// per route by workers.paths) and server.read_timeout_seconds (408 for a
// client that stalls mid-upload, blamed on the client in the log).
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeProject, startServer } from "./_helpers.ts";
import {
  exchange,
  hasCommand,
  PY_WORKER,
  writeScriptWorker,
} from "./_workers.ts";

Deno.test({
  name: "proxy timeouts from the config file: 504, per-route override, 408",
  ignore: !hasCommand("python3"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const project = makeProject({
      workers: {},
      serverYaml: "  paths:\n    /patient:\n      write_timeout_seconds: 6\n",
    });
    const file = join(project.root, "config", "server.yaml");
    Deno.writeTextFileSync(
      file,
      Deno.readTextFileSync(file).replace(
        "server:\n",
        "server:\n  write_timeout_seconds: 1\n  read_timeout_seconds: 1\n",
      ),
    );
    writeScriptWorker(project.root, "py", ["python3", PY_WORKER]);
    writeScriptWorker(project.root, "patient", ["python3", PY_WORKER]);
    const server = await startServer(project);
    try {
      await t.step(
        "a startup warning says what read_timeout_seconds cannot cover",
        () => {
          assert.match(
            server.logs(),
            /setting not enforced.*server\.read_timeout_seconds/,
          );
        },
      );

      await t.step(
        "a worker slower than server.write_timeout_seconds gets 504",
        async () => {
          const started = performance.now();
          const res = await fetch(`${server.base}/py/slow?ms=4000`);
          const ms = performance.now() - started;
          assert.equal(res.status, 504);
          assert.match(
            (await res.json()).error,
            /did not answer within 1000 ms/,
          );
          assert.ok(
            ms >= 900 && ms < 3500,
            `answered after ${Math.round(ms)} ms`,
          );
        },
      );

      await t.step("workers.paths overrides it for its route", async () => {
        const res = await fetch(`${server.base}/patient/slow?ms=2000`);
        assert.equal(res.status, 200);
        assert.equal((await res.json()).path, "/patient/slow?ms=2000");
      });

      await t.step(
        "a client stalled mid-upload gets 408 and the log blames the client",
        async () => {
          const blamed = () => server.logs().split("worker timed out").length;
          const before = blamed();
          const started = performance.now();
          const answer = await exchange(
            server.port,
            "POST /py/echo HTTP/1.1\r\nHost: t.test\r\nContent-Length: 100\r\n\r\n0123456789",
            8000,
            true,
          );
          const ms = performance.now() - started;
          assert.equal(answer.status, 408, answer.text);
          assert.ok(
            ms >= 900 && ms < 5000,
            `answered after ${Math.round(ms)} ms`,
          );
          assert.equal(
            blamed(),
            before,
            "a stalled client is not logged as a slow worker",
          );
          const res = await fetch(`${server.base}/py/echo`);
          assert.equal(res.status, 200, "the worker still serves");
          await res.body?.cancel();
        },
      );

      await t.step("a slow but steady upload is not a stall", async () => {
        let sent = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            // The pace of the upload is the behaviour under test, not a wait.
            await new Promise((r) => setTimeout(r, 300));
            if (sent === 6) return controller.close();
            sent++;
            controller.enqueue(new Uint8Array(1000).fill(65));
          },
        });
        const res = await fetch(`${server.base}/py/echo`, {
          method: "POST",
          body,
        });
        assert.equal(res.status, 200);
        const echo = await res.json();
        assert.equal(echo.length, 6000);
        assert.equal(echo.content_length, "6000");
      });
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});
