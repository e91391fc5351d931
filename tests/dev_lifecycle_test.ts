// End-to-end: dev-mode lifecycle — replaces run per worker, and a server
// restart does not wait on open live-reload streams.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyServer,
  freePort,
  makeProject,
  type Project,
  startServer,
  waitFor,
} from "./_helpers.ts";

/** A TypeScript worker answering `body`; listening on `port` instead of TQ_PORT when given. */
function writeWorker(
  project: Project,
  name: string,
  body: string,
  port?: number,
) {
  const dir = join(project.root, "workers", name);
  Deno.mkdirSync(join(dir, "src"), { recursive: true });
  const listen = port === undefined
    ? `Number(Deno.env.get("TQ_PORT"))`
    : String(port);
  Deno.writeTextFileSync(
    join(dir, "src", "main.ts"),
    `console.log("worker ${name} listens on " + ${listen});
const server = Deno.serve({ hostname: "127.0.0.1", port: ${listen}, onListen() {} }, (req) =>
  new URL(req.url).pathname === "/health" ? new Response("ok") : new Response(${
      JSON.stringify(body)
    }));
Deno.addSignalListener("SIGTERM", () => server.shutdown());
(async () => { for await (const _ of Deno.stdin.readable) { /* never written */ } Deno.exit(0); })();
`,
  );
}

async function text(url: string): Promise<string> {
  const res = await fetch(url);
  return await res.text();
}

Deno.test("a worker stuck in its health check does not delay another worker's rebuild", async () => {
  const project = makeProject({
    workers: {},
    deploymentYaml:
      "deployment:\n  dev:\n    file_watcher:\n      debounce_ms: 30\n",
  });
  writeWorker(project, "a", "a1");
  writeWorker(project, "b", "b1");
  const server = await startServer(project, ["--mode", "dev"]);
  try {
    assert.equal(await text(`${server.base}/b`), "b1");
    // a's new build ignores TQ_PORT: its replace waits the whole startup_timeout_ms (10 s).
    const wrongPort = freePort();
    writeWorker(project, "a", "a2", wrongPort);
    await server.waitForLog(`worker a listens on ${wrongPort}`, 10000);
    const started = Date.now();
    writeWorker(project, "b", "b2");
    await waitFor(
      async () => (await text(`${server.base}/b`)) === "b2",
      9000,
      "b's edit to be served",
    );
    const ms = Date.now() - started;
    assert.ok(ms < 4000, `b's edit took ${ms} ms to show`);
    assert.equal(
      await text(`${server.base}/a`),
      "a1",
      "a's old instance serves",
    );
  } finally {
    await server.stop();
    project.cleanup();
  }
});

Deno.test("a dev server restart with an open live-reload stream stops in under 1 s", async () => {
  const project = makeProject({ workers: { index: { TAG: "v1" } } });
  const source = copyServer(project.root);
  const runner = await startServer(project, ["--mode", "dev"], {
    main: join(source, "src", "dev", "runner.ts"),
  });
  try {
    const first = await runner.status();
    // A browser tab: an open EventSource stream.
    const res = await fetch(`${runner.base}/_tq/events`);
    const reader = res.body!.getReader();
    await reader.read();
    const ended = (async () => {
      while (!(await reader.read()).done) { /* pings */ }
      return Date.now();
    })();
    const touched = Date.now();
    const now = new Date();
    Deno.utimeSync(join(source, "src", "version.ts"), now, now);
    await runner.waitForLog("tqserver stopping", 10000);
    const stopping = Date.now();
    await runner.waitForLog("tqserver stopped", 10000);
    const stopped = Date.now();
    assert.ok(
      stopped - stopping < 1000,
      `the old server took ${stopped - stopping} ms to stop`,
    );
    // Bounded: a stream that is never ended must fail the test, not hang it.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const endedAt = await Promise.race([
      ended,
      new Promise<undefined>((r) =>
        timer = setTimeout(() => r(undefined), 10000)
      ),
    ]);
    clearTimeout(timer);
    assert.ok(
      endedAt !== undefined && endedAt - touched < 10000,
      "the stream was not ended within 10 s",
    );
    await waitFor(
      async () => (await runner.status()).pid !== first.pid,
      20000,
      "the new server",
    );
    console.log(
      `restart: stop ${stopped - stopping} ms, save to new server ${
        Date.now() - touched
      } ms`,
    );
    // The browser reconnects to the new server.
    const again = await fetch(`${runner.base}/_tq/events`);
    const hello = await again.body!.getReader().read();
    assert.match(new TextDecoder().decode(hello.value), /event: hello/);
    await again.body?.cancel().catch(() => {});
  } finally {
    await runner.stop();
    project.cleanup();
  }
});
