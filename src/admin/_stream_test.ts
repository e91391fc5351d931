import assert from "node:assert/strict";
import { EventLog } from "./events.ts";
import { StreamHub } from "./_stream.ts";
import { waitFor } from "../../tests/_helpers.ts";

Deno.test("StreamHub drops a client that stopped reading instead of queueing snapshots without end", async () => {
  const big = "x".repeat(100_000);
  const hub = new StreamHub({
    events: new EventLog(),
    snapshot: () => ({ big }),
    intervalMs: 2,
  });
  const res = hub.open(new Request("http://admin/api/stream"), 0);
  assert.equal(hub.size, 1);
  // Nobody reads: snapshots pile up until the bound.
  await waitFor(
    () => hub.size === 0,
    10_000,
    "the stalled client to be dropped",
  );
  let bytes = 0;
  for await (const chunk of res.body!) bytes += chunk.byteLength;
  assert.ok(bytes > 1 << 20, `only ${bytes} bytes were queued`);
  assert.ok(bytes < (1 << 20) + 300_000, `${bytes} bytes were queued`);
  hub.close();
});

Deno.test("StreamHub keeps a client that reads, through many snapshots", async () => {
  const hub = new StreamHub({
    events: new EventLog(),
    snapshot: () => ({ big: "y".repeat(100_000) }),
    intervalMs: 2,
  });
  const res = hub.open(new Request("http://admin/api/stream"), 0);
  const reader = res.body!.getReader();
  let bytes = 0;
  while (bytes < 3 << 20) bytes += (await reader.read()).value!.byteLength;
  assert.equal(hub.size, 1);
  hub.close();
  while (!(await reader.read()).done) { /* the rest */ }
  assert.equal(hub.size, 0);
});
