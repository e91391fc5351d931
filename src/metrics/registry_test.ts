import assert from "node:assert/strict";
import { Registry } from "./registry.ts";
import { parsePrometheus } from "./_prom_parse.ts";

Deno.test("Registry renders counters, gauges and histograms a strict parser accepts", () => {
  const r = new Registry();
  const c = r.counter({
    name: "t_requests_total",
    help: "Requests.",
    labels: ["worker", "code"],
  });
  const g = r.gauge({
    name: "t_in_flight",
    help: "In flight.",
    labels: ["worker"],
  });
  const h = r.histogram({
    name: "t_seconds",
    help: "Latency.",
    labels: ["worker"],
    buckets: [0.1, 1],
  });
  c.inc({ worker: 'we"ird\\na\nme', code: "2xx" });
  c.inc({ worker: "api", code: "5xx" }, 2);
  g.inc({ worker: "api" });
  g.inc({ worker: "api" }, -1);
  h.observe({ worker: "api" }, 0.05);
  h.observe({ worker: "api" }, 0.5);
  h.observe({ worker: "api" }, 5);
  const parsed = parsePrometheus(r.render());
  assert.equal(parsed.families.get("t_requests_total")?.type, "counter");
  assert.equal(
    parsed.value("t_requests_total", { worker: 'we"ird\\na\nme', code: "2xx" }),
    1,
  );
  assert.equal(
    parsed.value("t_requests_total", { worker: "api", code: "5xx" }),
    2,
  );
  assert.equal(parsed.value("t_in_flight", { worker: "api" }), 0);
  assert.equal(
    parsed.value("t_seconds_bucket", { worker: "api", le: "0.1" }),
    1,
  );
  assert.equal(parsed.value("t_seconds_bucket", { worker: "api", le: "1" }), 2);
  assert.equal(
    parsed.value("t_seconds_bucket", { worker: "api", le: "+Inf" }),
    3,
  );
  assert.equal(parsed.value("t_seconds_count", { worker: "api" }), 3);
  assert.equal(parsed.value("t_seconds_sum", { worker: "api" }), 5.55);
});

Deno.test("the parser rejects what a scraper would", () => {
  const bad = [
    "x 1\n", // no TYPE
    "# TYPE x counter\nx -1\n", // counter below zero
    '# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n', // duplicate series
    '# TYPE x gauge\nx{a="\\q"} 1\n', // bad escape
    "# TYPE x gauge\nx one\n", // bad value
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n', // not cumulative
    "# TYPE x gauge\nx 1", // no final newline
  ];
  for (const text of bad) {
    assert.throws(() => parsePrometheus(text), SyntaxError, text);
  }
});

Deno.test("Registry refuses bad names, missing labels and a counter going down", () => {
  const r = new Registry();
  assert.throws(() => r.counter({ name: "bad-name", help: "" }), TypeError);
  const c = r.counter({ name: "ok_total", help: "", labels: ["worker"] });
  assert.throws(
    () => r.counter({ name: "ok_total", help: "" }),
    /declared twice/,
  );
  assert.throws(() => c.inc({}), /Missing label "worker"/);
  assert.throws(() => c.inc({ worker: "a" }, -1), RangeError);
});
