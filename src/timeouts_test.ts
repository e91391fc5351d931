import assert from "node:assert/strict";
import { pendingCount, TICK_MS, within } from "./timeouts.ts";

/** The shared timer is unref'd (a server's listener keeps the loop alive); a test holds it. */
async function keepingAlive(fn: () => Promise<void>): Promise<void> {
  const alive = setTimeout(() => {}, 10_000);
  try {
    await fn();
  } finally {
    clearTimeout(alive);
  }
}

Deno.test("within() passes a settled value or error through and leaves no deadline behind", async () => {
  assert.equal(
    await within(Promise.resolve(7), {
      ms: 1000,
      onTimeout: () => new Error("late"),
    }),
    7,
  );
  await assert.rejects(
    within(Promise.reject(new TypeError("gone")), {
      ms: 1000,
      onTimeout: () => new Error("late"),
    }),
    TypeError,
  );
  assert.equal(pendingCount(), 0);
});

Deno.test("within() rejects with its timeout error once the work is silent for ms, on the shared tick", () =>
  keepingAlive(async () => {
    const never = new Promise<number>(() => {});
    const started = performance.now();
    await assert.rejects(
      within(never, { ms: 60, onTimeout: () => new RangeError("silent") }),
      RangeError,
    );
    const took = performance.now() - started;
    assert.ok(took >= 60, `fired early: ${took} ms`);
    assert.ok(took < 60 + TICK_MS + 200, `fired late: ${took} ms`);
    assert.equal(pendingCount(), 0);
  }));

Deno.test("within() keeps each deadline its own: a short one fires while a long one waits", () =>
  keepingAlive(async () => {
    let resolveLong!: (v: string) => void;
    const long = within(new Promise<string>((r) => resolveLong = r), {
      ms: 5000,
      onTimeout: () => new Error("long timed out"),
    });
    await assert.rejects(
      within(new Promise(() => {}), {
        ms: 30,
        onTimeout: () => new Error("short"),
      }),
      /short/,
    );
    assert.equal(pendingCount(), 1);
    resolveLong("done");
    assert.equal(await long, "done");
    assert.equal(pendingCount(), 0);
  }));
