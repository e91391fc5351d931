import assert from "node:assert/strict";
import { RateSeries } from "./series.ts";

Deno.test("RateSeries keeps per-second counts and mean latency for the last N seconds", () => {
  let now = 1_000_000;
  const series = new RateSeries({ seconds: 5, now: () => now });
  series.record("api", 10);
  series.record("api", 30);
  now += 1000;
  series.record("api", 5);
  now += 2000;
  let snap = series.snapshot().api!;
  assert.deepEqual(snap.rate, [0, 2, 1, 0, 0]);
  assert.deepEqual(snap.latency_ms, [0, 20, 5, 0, 0]);
  // Five seconds later the old buckets are gone, even though the ring slots are reused.
  now += 5000;
  series.record("api", 7);
  snap = series.snapshot().api!;
  assert.deepEqual(snap.rate, [0, 0, 0, 0, 1]);
});
