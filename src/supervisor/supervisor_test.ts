import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultConfig, type WorkerSpec } from "../config/mod.ts";
import { Supervisor } from "./supervisor.ts";
import { setupSupervisor, writeEcho } from "./_testing.ts";
import { waitFor } from "../../tests/_helpers.ts";

function setup() {
  // The periodic health check runs as in prod (every 5 s).
  return setupSupervisor({ supervisor: { healthIntervalMs: 5000 } });
}

async function get(origin: string): Promise<{ tag: string; pid: number }> {
  return await (await fetch(origin + "/x")).json();
}

Deno.test("replace() switches to the new instance and stops the old one", async () => {
  const { root, dir, spec, table, supervisor } = setup();
  try {
    assert.equal(await supervisor.add(spec), true);
    const first = table.match("/")!.acquire()!;
    first.release();
    const before = await get(first.origin);
    assert.equal(before.tag, "v1");
    writeEcho(dir, "v2");
    assert.equal(await supervisor.replace("index", "binary-changed"), true);
    const next = table.match("/")!.acquire()!;
    next.release();
    assert.notEqual(next.origin, first.origin);
    assert.equal((await get(next.origin)).tag, "v2");
    const entry = supervisor.workers.get("index")!;
    assert.equal(entry.restarts, 1);
    assert.equal(entry.lastRestartReason, "binary-changed");
    // The old instance drains and stops.
    await waitFor(
      () => entry.draining.size === 0,
      5000,
      "the old instance to drain",
    );
  } finally {
    await supervisor.shutdown();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("replace() keeps the old instance when the new one fails health", async () => {
  const { root, dir, spec, table, supervisor } = setup();
  try {
    await supervisor.add(spec);
    const before = supervisor.workers.get("index")!.active[0]!.pid;
    writeEcho(dir, "broken", "export FAIL_HEALTH=1\n");
    spec.settings.startup_timeout_ms = 600;
    assert.equal(await supervisor.replace("index", "binary-changed"), false);
    const entry = supervisor.workers.get("index")!;
    assert.equal(entry.state.status, "healthy");
    assert.equal(entry.active[0]!.pid, before);
    assert.match(entry.lastError ?? "", /Not healthy after 600 ms/);
    const target = table.match("/")!.acquire()!;
    target.release();
    assert.equal((await get(target.origin)).tag, "v1");
  } finally {
    await supervisor.shutdown();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("a retiring instance finishes its in-flight request before it is stopped", async () => {
  const { root, dir, spec, table, supervisor } = setup();
  try {
    // This worker does not drain itself: SIGTERM ends it at once, so only the
    // supervisor's drain (wait for in-flight requests, then SIGTERM) saves the request.
    writeEcho(dir, "v1", "export ABRUPT_STOP=1\n");
    await supervisor.add(spec);
    // The request is counted (acquired) before the replace but only sent once the
    // replace has switched, so the old instance is already retiring when it runs:
    // without a drain, its SIGTERM (restart_delay_ms = 10) would cut it.
    const target = table.match("/")!.acquire()!;
    writeEcho(dir, "v2");
    assert.equal(await supervisor.replace("index", "manual"), true);
    const slow = fetch(target.origin + "/slow?ms=700").then((r) => r.text())
      .finally(() => target.release());
    assert.equal(await slow, "slow v1");
  } finally {
    await supervisor.shutdown();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("a TypeScript worker without a binary is failed with a message saying what to do", async () => {
  const { root, spec, supervisor } = setup();
  try {
    const ts: WorkerSpec = {
      ...spec,
      kind: "typescript",
      binPath: join(spec.dir, "bin", "missing"),
    };
    assert.equal(await supervisor.add(ts), false);
    const entry = supervisor.workers.get("index")!;
    assert.equal(entry.state.status, "failed");
    assert.match(entry.lastError ?? "", /deno task build/);
    assert.equal(entry.acquire(), undefined);
  } finally {
    await supervisor.shutdown();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("an instance that served max_requests is replaced with reason max-requests", async () => {
  const { root, spec, table, supervisor } = setup();
  try {
    spec.settings.max_requests = 3;
    await supervisor.add(spec);
    const entry = supervisor.workers.get("index")!;
    const first = entry.active[0]!.pid;
    for (let i = 0; i < 3; i++) table.match("/")!.acquire()!.release();
    await waitFor(
      () => entry.active[0] && entry.active[0].pid !== first,
      5000,
      "the recycled instance to be replaced",
    );
    assert.equal(entry.lastRestartReason, "max-requests");
  } finally {
    await supervisor.shutdown();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("workers get the contract environment, settings env and the memory limit", async () => {
  const { root, spec, table } = setup();
  const config = defaultConfig();
  config.workers.port_range_start = 20000 + Math.floor(Math.random() * 12000);
  config.workers.port_range_end = config.workers.port_range_start + 20;
  config.deployment.prod.resources.worker_max_memory_mb = 96;
  let seen: Record<string, string> = {};
  const supervisor = new Supervisor(config, {
    mode: "prod",
    table,
    env: { PATH: Deno.env.get("PATH") ?? "" },
    spawn: (command, options) => {
      seen = options.env ?? {};
      return new Deno.Command(command, options).spawn();
    },
  });
  try {
    spec.settings.env = { EXTRA: "x", TQ_PORT: "1" };
    assert.equal(await supervisor.add(spec), true);
    const port = supervisor.workers.get("index")!.active[0]!.port;
    assert.equal(
      seen.TQ_PORT,
      String(port),
      "the contract wins over settings env",
    );
    assert.equal(seen.PORT, String(port));
    assert.equal(seen.TQ_MODE, "prod");
    assert.equal(seen.TQ_WORKER_NAME, "index");
    assert.equal(seen.TQ_WORKER_ROUTE, "/");
    assert.equal(seen.TQ_WORKER_BASE, spec.dir);
    assert.equal(seen.EXTRA, "x");
    assert.equal(seen.DENO_V8_FLAGS, "--max-old-space-size=96");
  } finally {
    await supervisor.shutdown();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("a live instance that fails its health checks is replaced with reason health-failed", async () => {
  const { root, dir, spec, table } = setup();
  const config = defaultConfig();
  config.workers.port_range_start = 20000 + Math.floor(Math.random() * 12000);
  config.workers.port_range_end = config.workers.port_range_start + 20;
  config.workers.startup_delay_ms = 10;
  config.workers.restart_delay_ms = 10;
  const supervisor = new Supervisor(config, {
    mode: "prod",
    table,
    healthIntervalMs: 50,
  });
  try {
    await supervisor.add(spec);
    const entry = supervisor.workers.get("index")!;
    const sick = entry.active[0]!.pid;
    Deno.writeTextFileSync(join(dir, "unhealthy-pid"), String(sick));
    await waitFor(
      () => entry.active[0] && entry.active[0].pid !== sick,
      5000,
      "the unhealthy instance to be replaced",
    );
    assert.equal(entry.lastRestartReason, "health-failed");
    assert.equal(entry.state.status, "healthy");
  } finally {
    await supervisor.shutdown();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("instances: 2 spreads requests over both and a replace renews both", async () => {
  const { root, dir, spec, table, supervisor } = setup();
  try {
    spec.settings.instances = 2;
    await supervisor.add(spec);
    const pids = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const target = table.match("/")!.acquire()!;
      pids.add((await get(target.origin)).pid);
      target.release();
    }
    assert.equal(pids.size, 2);
    writeEcho(dir, "v2");
    assert.equal(await supervisor.replace("index", "binary-changed"), true);
    const entry = supervisor.workers.get("index")!;
    assert.equal(entry.active.length, 2);
    for (const instance of entry.active) {
      assert.ok(!pids.has(instance.pid));
      assert.equal((await get(instance.origin)).tag, "v2");
    }
  } finally {
    await supervisor.shutdown();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("stopping a worker does not hang on a grandchild that left its process group", async () => {
  const { root, dir, spec, supervisor } = setup();
  // The worker starts a daemon in its own session that keeps stdout open for 30 s.
  writeEcho(dir, "v1", `setsid sleep 30 & echo $! > '${dir}/daemon.pid'\n`);
  try {
    await supervisor.add(spec);
    const started = Date.now();
    await supervisor.shutdown();
    assert.ok(
      Date.now() - started < 5000,
      `shutdown took ${Date.now() - started} ms`,
    );
  } finally {
    try {
      Deno.kill(
        Number(Deno.readTextFileSync(join(dir, "daemon.pid"))),
        "SIGKILL",
      );
    } catch {
      // Gone already.
    }
    Deno.removeSync(root, { recursive: true });
  }
});
