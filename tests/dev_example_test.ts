// End-to-end, dev mode, on the example `index` worker (Hono + the SDK + Eta views): an edit is
// served with no failed request, stack traces point at src/, and the page keeps working.
import assert from "node:assert/strict";
import { startServer, waitFor } from "./_helpers.ts";
import { startLoad } from "./_load.ts";
import { exampleProject } from "./_example.ts";

Deno.test("editing the SDK-based example worker serves the new content with no failed request", async () => {
  const project = exampleProject();
  const original = Deno.readTextFileSync(project.indexMain);
  const server = await startServer(project, ["--mode", "dev"], {
    main: project.main,
  });
  try {
    const home = await (await fetch(`${server.base}/`)).text();
    assert.match(home, /<title>Home · tqserver<\/title>/);
    assert.match(home, /\/_tq\/livereload\.js/);
    const load = startLoad(`${server.base}/`, { concurrency: 3 });
    await waitFor(() => load.count() > 10, 10_000, "load");
    for (const version of [1, 2, 3]) {
      Deno.writeTextFileSync(
        project.indexMain,
        original.replace(`site("Home", "/")`, `site("Home v${version}", "/")`),
      );
      await waitFor(
        async () =>
          (await (await fetch(`${server.base}/`)).text()).includes(
            `<title>Home v${version} · tqserver</title>`,
          ),
        15_000,
        `edit ${version} served`,
      );
    }
    const result = await load.stop();
    assert.equal(result.failed, 0, result.errors.join("\n"));
    assert.ok(result.ok > 10);
    // The views still render through the layout, and static files are served.
    const about = await (await fetch(`${server.base}/about`)).text();
    assert.match(about, /<title>About · tqserver<\/title>/);
    const css = await fetch(`${server.base}/static/index/css/style.css`);
    assert.equal(css.status, 200);
    await css.body?.cancel();
  } finally {
    await server.stop();
    project.cleanup();
  }
});

Deno.test("a runtime error in the example worker's route is reported at its src/ line", async () => {
  const project = exampleProject();
  const original = Deno.readTextFileSync(project.indexMain);
  const server = await startServer(project, ["--mode", "dev"], {
    main: project.main,
  });
  try {
    const lines = original.split("\n");
    const at = lines.findIndex((l) => l.startsWith("serve(app);"));
    lines.splice(
      at,
      0,
      'app.get("/boom", () => {',
      '  throw new Error("boom in a route");',
      "});",
    );
    Deno.writeTextFileSync(project.indexMain, lines.join("\n"));
    const throwLine = at + 2;
    const res = await waitFor(
      async () => {
        const r = await fetch(`${server.base}/boom`);
        await r.body?.cancel();
        return r.status === 500 ? r : undefined;
      },
      15_000,
      "the new route",
    );
    assert.equal(res.status, 500);
    // Hono logs the error with its stack: mapped from the bundle back to src/main.ts.
    await server.waitForLog(
      new RegExp(`workers/index/src/main\\.ts:${throwLine}:\\d+`),
      10_000,
    );
    assert.doesNotMatch(server.logs(), /workers\/index\/bin\/index:\d+/);
  } finally {
    await server.stop();
    project.cleanup();
  }
});
