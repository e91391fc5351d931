import assert from "node:assert/strict";
import { EventLog } from "./events.ts";
import { observeRecords } from "./observer.ts";

Deno.test("EventLog keeps the last N events; since(id) returns only newer ones", () => {
  const log = new EventLog({ capacity: 3 });
  const seen: number[] = [];
  const off = log.subscribe((e) => seen.push(e.id));
  for (let i = 0; i < 5; i++) {
    log.add({ type: "crash", message: `m${i}`, fields: {} });
  }
  off();
  log.add({ type: "crash", message: "after", fields: {} });
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  assert.deepEqual(log.since(0).map((e) => e.id), [4, 5, 6]);
  assert.deepEqual(log.since(4).map((e) => e.id), [5, 6]);
  assert.deepEqual(log.since(6), []);
  assert.equal(log.nextId, 7);
});

Deno.test("observeRecords turns supervisor, build and reload records into timeline sentences", () => {
  const log = new EventLog();
  const observe = observeRecords(log);
  const rec = (msg: string, fields: Record<string, unknown>) =>
    observe({ time: new Date(), level: "info", msg, fields });
  rec("worker replaced", {
    worker: "api",
    reason: "manual",
    ms: 120,
    pid: "7",
    old_pid: "5",
  });
  rec("worker crashed", {
    worker: "api",
    pid: 7,
    error: "Exited unexpectedly with code 3",
  });
  rec("worker build failed", {
    worker: "api",
    file: "src/main.ts",
    line: 3,
    error: "Unexpected token",
  });
  rec("[2/5] api 180 ms", { worker: "api", ms: 180, status: "built" });
  rec("checked 12 workers in 14 ms: 1 replaced (binary-changed)", {
    ms: 14,
    workers: 12,
  });
  rec("worker state", { worker: "api", from: "starting", to: "healthy" });
  rec("request failed", { error: "x" });
  rec("worker start failed", {
    worker: "api",
    reason: "manual",
    error: new Error("Exited with code 1"),
  });
  assert.deepEqual(log.since(0).map((e) => [e.type, e.message]), [
    ["replace", "api replaced (manual) in 120 ms: pid 5 → 7"],
    ["crash", "api crashed (pid 7): Exited unexpectedly with code 3"],
    ["build-error", "api build failed: src/main.ts:3: Unexpected token"],
    ["build", "api built in 180 ms"],
    [
      "reload",
      "Reload check: checked 12 workers in 14 ms: 1 replaced (binary-changed)",
    ],
    ["replace-failed", "api failed to start (manual): Exited with code 1"],
  ]);
  // Errors reach /api/events as their message, not as `{}`.
  const last = JSON.parse(JSON.stringify(log.since(0).at(-1)));
  assert.equal(last.fields.error, "Exited with code 1");
});
