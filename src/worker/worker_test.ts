import assert from "node:assert/strict";
import { join } from "node:path";
import { exitWithin, startWorker } from "./testdata/process.ts";
import { waitFor } from "../../tests/_helpers.ts";

const FIXTURE = join(import.meta.dirname!, "testdata", "app.ts");

async function makeBase(): Promise<string> {
  const base = await Deno.makeTempDir({ prefix: "tq_worker_" });
  await Deno.mkdir(join(base, "private", "views"), { recursive: true });
  await Deno.mkdir(join(base, "private", "templates"), { recursive: true });
  await Deno.writeTextFile(join(base, "secret"), "top secret");
  await Deno.writeTextFile(join(base, "private", "msg.txt"), "one");
  await Deno.writeTextFile(
    join(base, "private", "views", "page.html"),
    "<p>Hello <%= it.name %></p>",
  );
  await Deno.writeTextFile(
    join(base, "private", "templates", "base.html"),
    "<html><body><main><%~ it.body %></main></body></html>",
  );
  return base;
}

async function text(url: string): Promise<[number, string]> {
  const res = await fetch(url);
  return [res.status, await res.text()];
}

Deno.test("serve() runs a fetch app by the worker contract", async (t) => {
  const base = await makeBase();
  const w = await startWorker(FIXTURE, {
    TQ_WORKER_ROUTE: "/app",
    TQ_WORKER_BASE: base,
    TQ_WORKER_NAME: "fixture",
  });
  try {
    await t.step("health answers 200 with X-TQ-Reload: SIGHUP", async () => {
      const res = await fetch(`${w.origin}/health`);
      await res.body?.cancel();
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-tq-reload"), "SIGHUP");
    });

    await t.step(
      "the app sees paths relative to its route, query kept",
      async () => {
        const res = await fetch(`${w.origin}/app/x?a=1&b=two`);
        assert.deepEqual(await res.json(), {
          path: "/x",
          search: "?a=1&b=two",
          original: `${w.origin}/app/x?a=1&b=two`,
          prefix: "/app",
        });
        assert.deepEqual(await text(`${w.origin}/app`), [200, "root"]);
        assert.deepEqual(await text(`${w.origin}/app/`), [200, "root"]);
      },
    );

    await t.step(
      "readPrivate refuses a path that climbs out of private/",
      async () => {
        const [status, body] = await text(`${w.origin}/app/read?f=../secret`);
        assert.equal(status, 400);
        assert.equal(JSON.parse(body).error, "TypeError");
        assert.doesNotMatch(body, /top secret/);
      },
    );

    await t.step(
      "render escapes data and wraps the view in the layout",
      async () => {
        const [status, body] = await text(
          `${w.origin}/app/render?name=${
            encodeURIComponent("<script>x</script>")
          }`,
        );
        assert.equal(status, 200);
        assert.equal(
          body,
          "<html><body><main><p>Hello &lt;script&gt;x&lt;/script&gt;</p></main></body></html>",
        );
      },
    );

    await t.step(
      "SIGHUP clears the private cache and calls onReload",
      async () => {
        const file = join(base, "private", "msg.txt");
        assert.deepEqual(await text(`${w.origin}/app/read?f=msg.txt`), [
          200,
          "one",
        ]);
        // Same size, same mtime: only a cleared cache can show the new text.
        const { mtime } = await Deno.stat(file);
        await Deno.writeTextFile(file, "two");
        await Deno.utime(file, mtime!, mtime!);
        assert.deepEqual(await text(`${w.origin}/app/read?f=msg.txt`), [
          200,
          "one",
        ]);
        w.child.kill("SIGHUP");
        await waitFor(
          async () =>
            (await text(`${w.origin}/app/read?f=msg.txt`))[1] === "two",
          5000,
          "the new text after SIGHUP",
        );
        assert.deepEqual(await text(`${w.origin}/app/reloads`), [200, "1"]);
      },
    );

    await t.step(
      "SIGTERM lets an in-flight request finish, then exits 0",
      async () => {
        const res = await fetch(`${w.origin}/app/slow?ms=400`);
        assert.equal(res.status, 200);
        w.child.kill("SIGTERM");
        // Draining begins with the listener closed: a connect is refused.
        const { port } = new URL(w.origin);
        await waitFor(
          async () => {
            try {
              (await Deno.connect({ hostname: "127.0.0.1", port: +port }))
                .close();
              return false;
            } catch {
              return true;
            }
          },
          5000,
          `the worker on port ${port} to stop accepting after SIGTERM`,
        );
        // A repeated SIGTERM or a late SIGHUP while draining changes nothing.
        w.child.kill("SIGTERM");
        w.child.kill("SIGHUP");
        assert.equal(await res.text(), "started finished");
        const status = await exitWithin(w.child, 5000);
        assert.notEqual(status, "timeout");
        assert.equal((status as Deno.CommandStatus).code, 0);
        const output = await w.output;
        assert.match(output, /worker stopping.*reason=sigterm/);
        // Deno's legacy-abort warning would be noise in the server log on every start.
        assert.doesNotMatch(output, /legacy/);
      },
    );
  } finally {
    await exitWithin(w.child, 1).catch(() => {});
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("serve() exits when stdin reaches EOF", async () => {
  const base = await makeBase();
  const w = await startWorker(FIXTURE, { TQ_WORKER_BASE: base });
  try {
    await w.child.stdin.close();
    const status = await exitWithin(w.child, 8000);
    assert.notEqual(status, "timeout");
    assert.equal((status as Deno.CommandStatus).code, 0);
    assert.match(await w.output, /reason=stdin-eof/);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
