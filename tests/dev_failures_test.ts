// Dev mode: every worker failure is on the page where the user looks, through
// the same overlay (/_tq/events) and `last_error`: a worker that never answers
// /health (with the URL probed), one that dies of a signal (a Python worker
// that aborts), a folder with an invalid name. Output shown carries no colour
// codes, and `restarts` counts every restart the log announces.
import assert from "node:assert/strict";
import { join } from "node:path";
import { CHROMIUM, hasChromium, launchChromium } from "./_browser.ts";
import { makeProject, startServer, waitFor } from "./_helpers.ts";
import { subscribe } from "./_dev_events.ts";

/** A prebuilt worker (any language): `workers/{name}/bin/{name}`. */
function writeBinary(root: string, name: string, script: string): void {
  const dir = join(root, "workers", name, "bin");
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(join(dir, name), script, { mode: 0o755 });
  Deno.chmodSync(join(dir, name), 0o755);
}

const NEVER_HEALTHY = `#!/usr/bin/env python3
# Prints in colour, then never listens: its health check can never pass.
import sys, time
print("\\x1b[0m\\x1b[1mlistening on 3000\\x1b[0m", flush=True)
time.sleep(3600)
`;

const ABORTS = `#!/usr/bin/env python3
import os, sys, time
print("about to abort", file=sys.stderr, flush=True)
# Dies shortly after its start, as a crashing worker does: the fixture's
# behaviour, not a wait.
time.sleep(0.1)
os.abort()
`;

Deno.test({
  name:
    `dev shows a never-healthy worker (probed URL), a worker killed by SIGABRT and an invalid folder name on the page${
      hasChromium ? "" : ` (browser part skipped: no ${CHROMIUM})`
    }`,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const project = makeProject({
      workers: {},
      serverYaml:
        "  default:\n    startup_timeout_ms: 800\n    retry_window_ms: 3000\n",
      deploymentYaml:
        "deployment:\n  dev:\n    file_watcher:\n      debounce_ms: 30\n",
    });
    writeBinary(project.root, "stuck", NEVER_HEALTHY);
    writeBinary(project.root, "aborts", ABORTS);
    const server = await startServer(project, ["--mode", "dev"]);
    const events = await subscribe(server);
    try {
      await t.step(
        "never healthy: overlay and last_error name the probed URL, without colour codes",
        async () => {
          const shown = await waitFor(
            () =>
              events.list.find((e) =>
                e.type === "error" && e.data.kind === "start" &&
                e.data.worker === "stuck"
              ),
            15_000,
            "the start problem of stuck",
          );
          const message = String(shown.data.message);
          assert.match(
            message,
            /probed GET http:\/\/127\.0\.0\.1:\d+\/health \(TQ_PORT=\d+\)/,
          );
          assert.match(message, /last output: "listening on 3000"/);
          assert.ok(!message.includes("\u001b"), message);
          const w = (await server.status()).workers.find((x) =>
            x.name === "stuck"
          )!;
          assert.match(
            String(w.last_error),
            /probed GET http:\/\/127\.0\.0\.1/,
          );
          assert.ok(!String(w.last_error).includes("\u001b"));
          assert.ok(
            !server.logs().includes("\u001b["),
            "colour codes in the log",
          );
        },
      );

      await t.step(
        "its route answers at once with the error, not after a wait",
        async () => {
          const started = performance.now();
          const res = await fetch(`${server.base}/stuck`, {
            headers: { accept: "text/html" },
          });
          const html = await res.text();
          assert.ok(performance.now() - started < 1000);
          assert.equal(res.status, 503);
          assert.equal(res.headers.get("retry-after"), "1");
          assert.match(html, /probed GET http:\/\/127\.0\.0\.1:\d+\/health/);
          assert.match(html, /\/_tq\/livereload\.js/);
        },
      );

      await t.step("restarts counts every restart the log shows", async () => {
        await waitFor(
          () =>
            server.logs().split("\n").filter((l) =>
              l.includes("worker restarting") && l.includes("worker=stuck")
            ).length >= 2,
          15_000,
          "two restarts of stuck",
        );
        const announced = server.logs().split("\n").filter((l) =>
          l.includes("worker restarting") && l.includes("worker=stuck")
        ).length;
        const w = (await server.status()).workers.find((x) =>
          x.name === "stuck"
        )!;
        assert.ok(w.restarts >= announced, `${w.restarts} < ${announced}`);
        assert.equal(w.last_restart_reason, "crashed");
      });

      await t.step(
        "a worker killed by SIGABRT is a crash on the page",
        async () => {
          const crash = await waitFor(
            () =>
              events.list.find((e) =>
                e.type === "error" && e.data.kind === "crash" &&
                e.data.worker === "aborts"
              ),
            15_000,
            "the crash of aborts",
          );
          assert.match(String(crash.data.message), /signal SIGABRT/);
          assert.match(String(crash.data.message), /about to abort/);
        },
      );

      await t.step(
        "a worker that binds a taken port instead of TQ_PORT crashes with a hint",
        async () => {
          const squatter = Deno.listen({ hostname: "127.0.0.1", port: 0 });
          const taken = (squatter.addr as Deno.NetAddr).port;
          try {
            writeBinary(
              project.root,
              "fixed",
              `#!/usr/bin/env python3
from http.server import HTTPServer, BaseHTTPRequestHandler
HTTPServer(("127.0.0.1", ${taken}), BaseHTTPRequestHandler).serve_forever()
`,
            );
            const crash = await waitFor(
              () =>
                events.list.find((e) =>
                  e.type === "error" && e.data.kind === "crash" &&
                  e.data.worker === "fixed"
                ),
              15_000,
              "the crash of fixed",
            );
            const message = String(crash.data.message);
            assert.match(message, /Address already in use/);
            assert.match(
              message,
              /The port it tried is taken\. A worker listens on 127\.0\.0\.1 at the port in \$TQ_PORT \(\d+ for this instance\)/,
            );
          } finally {
            squatter.close();
            Deno.removeSync(join(project.root, "workers", "fixed"), {
              recursive: true,
            });
          }
        },
      );

      await t.step(
        "a folder with an invalid name is shown, in words, and cleared once renamed",
        async () => {
          const blog = join(project.root, "workers", "Blog");
          writeBinary(project.root, "Blog", NEVER_HEALTHY);
          Deno.renameSync(join(blog, "bin", "Blog"), join(blog, "bin", "blog"));
          const shown = await waitFor(
            () =>
              events.list.find((e) =>
                e.type === "error" && e.data.kind === "folder"
              ),
            10_000,
            "the skipped folder",
          );
          assert.equal(shown.data.worker, "workers/Blog");
          assert.match(
            String(shown.data.message),
            /uses only lowercase letters, digits, "_" and "-", and starts with a letter or digit \(rename it, e\.g\. to "blog"\)/,
          );
          Deno.renameSync(blog, join(project.root, "workers", "blog"));
          await waitFor(
            () =>
              events.list.some((e) =>
                e.type === "ok" && e.data.kind === "folder" &&
                e.data.worker === "workers/Blog"
              ),
            10_000,
            "the skipped folder cleared",
          );
        },
      );

      if (hasChromium) {
        await t.step(
          "in Chromium, the overlay over the page shows the probed URL",
          async () => {
            const browser = await launchChromium();
            try {
              const page = browser.context.pages()[0] ??
                await browser.context.newPage();
              await page.goto(`${server.base}/stuck`);
              const overlay = page.locator("#__tq_overlay");
              await overlay.waitFor({ timeout: 10_000 });
              const text = await overlay.innerText();
              assert.match(text, /Worker not healthy: stuck/);
              assert.match(
                text,
                /probed GET http:\/\/127\.0\.0\.1:\d+\/health/,
              );
            } finally {
              await browser.close();
            }
          },
        );
      }
    } finally {
      events.close();
      await server.stop();
      project.cleanup();
    }
  },
});
