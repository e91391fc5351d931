import assert from "node:assert/strict";
import { ServerMetrics } from "./server_metrics.ts";
import { meterRequests } from "./meter.ts";
import { parsePrometheus } from "./_prom_parse.ts";
import { waitFor } from "../../tests/_helpers.ts";
import type { WorkerStatusJson } from "../supervisor/mod.ts";
import type { AccessEntry, LogRecord } from "../log/mod.ts";
import { RequestContext } from "../proxy/mod.ts";
import { rawPathOf } from "../routes/mod.ts";

/** A `route` for meterRequests whose context names what `classify` says of the raw path. */
function context(classify: (path: string) => string) {
  return (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
    const name = classify(rawPathOf(req.url));
    const ctx = new RequestContext(
      info,
      name === "_tq" || name === "static" ? name : "worker",
    );
    ctx.worker = name;
    return ctx;
  };
}

const worker = (name: string): WorkerStatusJson => ({
  name,
  route: "/",
  status: "healthy",
  pid: 1,
  port: 9000,
  started_at: null,
  binary_path: "",
  binary_mtime: null,
  public_mtime: null,
  private_mtime: null,
  restarts: 0,
  last_restart_reason: null,
  last_error: null,
  requests: 0,
  in_flight: 0,
  instances: [{
    pid: 1,
    port: 9000,
    status: "healthy",
    started_at: "",
    in_flight: 0,
    requests: 0,
  }],
});

const record = (msg: string, fields: Record<string, unknown>): LogRecord => ({
  time: new Date(),
  level: "info",
  msg,
  fields,
});

const info = {
  remoteAddr: { hostname: "127.0.0.1", port: 1, transport: "tcp" },
} as Deno.ServeHandlerInfo<Deno.NetAddr>;

Deno.test("every declared metric has a sample once its event happened (none declared and never updated)", async () => {
  const metrics = new ServerMetrics({
    // A fixed second: with the real clock, a second boundary between the
    // request and the snapshot moved the request out of `rate.at(-1)`.
    now: () => 1_700_000_000_500,
    source: () => ({
      version: "1",
      mode: "prod",
      started_at: new Date().toISOString(),
      workers: [worker("index")],
    }),
    staticCounters: () => ({
      hits: 3,
      misses: 1,
      revalidations: 0,
      invalidations: 0,
      evictions: 0,
      entries: 1,
      bytes: 100,
      maxBytes: 1000,
      servedBytes: 4,
    }),
  });
  const entries: AccessEntry[] = [];
  const handler = meterRequests(
    (req) =>
      new URL(req.url).pathname.startsWith("/static/")
        ? new Response("body", { headers: { "content-length": "4" } })
        : new Response("x", { status: 503 }),
    {
      metrics,
      route: context((p) => p.startsWith("/static/") ? "static" : "index"),
      access: (e) => entries.push(e),
    },
  );
  // An answer without Content-Length is logged once its body was sent.
  await (await handler(new Request("http://h/a?q=1"), info)).text();
  await handler(new Request("http://h/static/index/app.css"), info);
  metrics.observe(
    record("worker replaced", { worker: "index", reason: "binary-changed" }),
  );
  metrics.observe(record("worker crashed", { worker: "index", pid: 2 }));
  metrics.observe(
    record("worker start failed", { worker: "index", reason: "crashed" }),
  );
  metrics.observe(record("worker build failed", { worker: "index" }));
  metrics.observe(
    record("build failed, old instance keeps serving", { worker: "index" }),
  );
  metrics.observe(
    record("checked 1 worker in 12 ms: nothing changed", {
      ms: 12,
      workers: 1,
    }),
  );
  const parsed = parsePrometheus(metrics.render());
  for (const m of metrics.registry.metrics) {
    const family = parsed.families.get(m.name);
    assert.ok(family && family.samples.length > 0, `${m.name} has no sample`);
  }
  assert.equal(
    parsed.value("tqserver_http_requests_total", {
      worker: "index",
      code: "5xx",
    }),
    1,
  );
  assert.equal(
    parsed.value("tqserver_http_requests_in_flight", { worker: "index" }),
    0,
  );
  assert.equal(parsed.value("tqserver_static_bytes_total", {}), 4);
  assert.equal(parsed.value("tqserver_static_cache_hits_total", {}), 3);
  assert.equal(
    parsed.value("tqserver_worker_restarts_total", {
      worker: "index",
      reason: "binary-changed",
    }),
    1,
  );
  assert.equal(
    parsed.value("tqserver_build_errors_total", { worker: "index" }),
    2,
  );
  assert.equal(
    parsed.value("tqserver_reload_check_duration_seconds_sum", {}),
    0.012,
  );
  assert.equal(
    parsed.value("tqserver_worker_instances", { worker: "index" }),
    1,
  );
  assert.deepEqual(
    entries.map((e) => [e.path, e.worker, e.status, e.bytes]),
    [
      ["/a?q=1", "index", 503, 1],
      ["/static/index/app.css", "static", 200, 4],
    ],
  );
  assert.equal(metrics.series.snapshot().index!.rate.at(-1), 1);
});

Deno.test("meterRequests counts a request in flight until its headers exist, and a thrown handler as 500", async () => {
  const metrics = new ServerMetrics({
    source: () => ({
      version: "1",
      mode: "prod",
      started_at: new Date().toISOString(),
      workers: [],
    }),
  });
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const handler = meterRequests(async (req) => {
    if (req.url.endsWith("/boom")) throw new Error("boom");
    await gate;
    return new Response("ok");
  }, { metrics, route: context(() => "api") });
  const pending = handler(new Request("http://h/wait"), info);
  await waitFor(
    () =>
      parsePrometheus(metrics.render()).value(
        "tqserver_http_requests_in_flight",
        { worker: "api" },
      ) === 1,
    5000,
    "the request to count as in flight",
  );
  release();
  await pending;
  await assert.rejects(
    Promise.resolve(handler(new Request("http://h/boom"), info)),
    /boom/,
  );
  const parsed = parsePrometheus(metrics.render());
  assert.equal(
    parsed.value("tqserver_http_requests_in_flight", { worker: "api" }),
    0,
  );
  assert.equal(
    parsed.value("tqserver_http_requests_total", {
      worker: "api",
      code: "2xx",
    }),
    1,
  );
  assert.equal(
    parsed.value("tqserver_http_requests_total", {
      worker: "api",
      code: "5xx",
    }),
    1,
  );
  assert.equal(
    parsed.value("tqserver_http_request_duration_seconds_count", {
      worker: "api",
    }),
    2,
  );
});

Deno.test("meterRequests logs a streamed body's bytes as sent, once it ended or the client left", async (t) => {
  const metrics = new ServerMetrics({
    source: () => ({
      version: "1",
      mode: "prod",
      started_at: new Date().toISOString(),
      workers: [],
    }),
  });
  const entries: AccessEntry[] = [];
  let logged = () => {};
  const chunk = new Uint8Array(1000);
  const handler = meterRequests((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/endless") {
      // Writes until the client goes away (an SSE feed, a download cut short).
      return new Response(
        new ReadableStream<Uint8Array>({
          pull: async (c) => {
            // The pace of the endless stream under test, not a wait.
            await new Promise((r) => setTimeout(r, 5));
            c.enqueue(chunk);
          },
        }),
      );
    }
    if (path === "/tq") return new Response("dev hook");
    let n = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull: (c) => n++ < 3 ? c.enqueue(chunk) : c.close(),
      }),
    );
  }, {
    metrics,
    route: context((p) => p === "/tq" ? "_tq" : "index"),
    access: (e) => {
      entries.push(e);
      logged();
    },
  });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    handler,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const next = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("no access entry within 5 s")),
        5000,
      );
      logged = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  try {
    await t.step("chunked body: its bytes, once sent", async () => {
      const wait = next();
      const res = await fetch(`${base}/chunked`);
      assert.equal(res.headers.get("content-length"), null);
      assert.equal((await res.bytes()).byteLength, 3000);
      await wait;
      assert.deepEqual(entries.map((e) => [e.path, e.bytes]), [
        ["/chunked", 3000],
      ]);
    });
    await t.step("HEAD: 0, at once", async () => {
      entries.length = 0;
      await (await fetch(`${base}/chunked`, { method: "HEAD" })).body
        ?.cancel();
      assert.deepEqual(entries.map((e) => [e.method, e.bytes]), [
        ["HEAD", 0],
      ]);
    });
    await t.step("client leaves mid-stream: what was sent so far", async () => {
      entries.length = 0;
      const wait = next();
      const res = await fetch(`${base}/endless`);
      const reader = res.body!.getReader();
      let got = 0;
      while (got < 5000) got += (await reader.read()).value?.byteLength ?? 0;
      await reader.cancel();
      await wait;
      const bytes = entries[0]!.bytes;
      assert.ok(bytes >= got, `logged ${bytes} < received ${got}`);
    });
    await t.step("a /_tq/ answer keeps its fixed length", async () => {
      entries.length = 0;
      const res = await fetch(`${base}/tq`);
      assert.equal(res.headers.get("content-length"), "8");
      await res.text();
      assert.equal(entries.length, 1);
    });
  } finally {
    await server.shutdown();
  }
});
