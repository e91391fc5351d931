import assert from "node:assert/strict";
import { basename } from "node:path";
import { workerEnv } from "./env.ts";

const KEYS = [
  "TQ_PORT",
  "PORT",
  "TQ_MODE",
  "TQ_WORKER_NAME",
  "TQ_WORKER_ROUTE",
  "TQ_WORKER_BASE",
  "TQ_HEALTH_PATH",
];

function withEnv(vars: Record<string, string>, fn: () => void): void {
  const saved = new Map(KEYS.map((k) => [k, Deno.env.get(k)]));
  try {
    for (const k of KEYS) Deno.env.delete(k);
    for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
    fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

Deno.test("workerEnv() reads the TQ_* variables the server sets", () => {
  withEnv({
    TQ_PORT: "9123",
    PORT: "1",
    TQ_MODE: "prod",
    TQ_WORKER_NAME: "api_users",
    TQ_WORKER_ROUTE: "/api/users/",
    TQ_WORKER_BASE: "/srv/workers/api_users",
    TQ_HEALTH_PATH: "/ready",
  }, () => {
    assert.deepEqual(workerEnv(), {
      port: 9123,
      mode: "prod",
      name: "api_users",
      route: "/api/users",
      base: "/srv/workers/api_users",
      healthPath: "/ready",
    });
  });
});

Deno.test("workerEnv() falls back to standalone defaults", () => {
  withEnv({}, () => {
    assert.deepEqual(workerEnv(), {
      port: 8000,
      mode: "dev",
      name: basename(Deno.cwd()),
      route: "/",
      base: Deno.cwd(),
      healthPath: "/health",
    });
  });
  withEnv({ PORT: "8123" }, () => assert.equal(workerEnv().port, 8123));
});

Deno.test("workerEnv() rejects a bad port, mode or route", () => {
  for (const port of ["0", "70000", "80a", "-1"]) {
    withEnv(
      { TQ_PORT: port },
      () => assert.throws(() => workerEnv(), RangeError),
    );
  }
  withEnv(
    { TQ_MODE: "staging" },
    () => assert.throws(() => workerEnv(), TypeError),
  );
  withEnv(
    { TQ_WORKER_ROUTE: "api" },
    () => assert.throws(() => workerEnv(), TypeError),
  );
});
