import assert from "node:assert/strict";
import { ServerMetrics } from "./server_metrics.ts";
import { meterRequests } from "./meter.ts";
import { parsePrometheus } from "./_prom_parse.ts";
import type { WorkerStatusJson } from "../supervisor/mod.ts";
import type { AccessEntry, LogRecord } from "../log/mod.ts";

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
      classify: (p) => p.startsWith("/static/") ? "static" : "index",
      access: (e) => entries.push(e),
    },
  );
  await handler(new Request("http://h/a?q=1"), info);
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
      ["/a?q=1", "index", 503, 0],
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
  }, { metrics, classify: () => "api" });
  const pending = handler(new Request("http://h/wait"), info);
  await new Promise((r) => setTimeout(r, 10));
  let parsed = parsePrometheus(metrics.render());
  assert.equal(
    parsed.value("tqserver_http_requests_in_flight", { worker: "api" }),
    1,
  );
  release();
  await pending;
  await assert.rejects(
    Promise.resolve(handler(new Request("http://h/boom"), info)),
    /boom/,
  );
  parsed = parsePrometheus(metrics.render());
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
