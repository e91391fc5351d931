// Several instances of one worker (SPEC §5): least-in-flight picking, the
// rolling replace, a crashed instance restarted alone, per-instance
// max_requests and health checks, and a change of `instances` alone.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { SupervisorOptions } from "./supervisor.ts";
import { setupSupervisor, until, writeEcho } from "./_testing.ts";
import type { Instance } from "./instance.ts";

function setup(instances: number, options: Partial<SupervisorOptions> = {}) {
  const t = setupSupervisor({
    prefix: "tq-inst-",
    instances,
    supervisor: options,
  });
  const entry = () => t.supervisor.workers.get("index")!;
  const pids = () => entry().active.map((i) => i.pid);
  return { ...t, entry, pids };
}

Deno.test("acquire() picks the instance with the fewest in flight, round-robin among equals", async () => {
  const t = setup(3);
  try {
    assert.equal(await t.supervisor.add(t.spec), true);
    const upstream = t.table.match("/")!;
    const held = [
      upstream.acquire()!,
      upstream.acquire()!,
      upstream.acquire()!,
    ];
    assert.equal(
      new Set(held.map((h) => h.origin)).size,
      3,
      "three requests in flight went to three instances",
    );
    held[1]!.release();
    const next = upstream.acquire()!;
    assert.equal(next.origin, held[1]!.origin, "the idle instance is chosen");
    next.release();
    for (const h of held) h.release();
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const target = upstream.acquire()!;
      seen.push(target.origin);
      target.release();
    }
    assert.equal(new Set(seen.slice(0, 3)).size, 3, "ties rotate");
    assert.deepEqual(seen.slice(3), seen.slice(0, 3));
  } finally {
    await t.cleanup();
  }
});

Deno.test("a rolling replace keeps every instance serving and starts the next new one only once an old one stopped", async () => {
  const spawned: { pid: number; at: number }[] = [];
  const t = setup(3, {
    spawn: (command, options) => {
      const child = new Deno.Command(command, options).spawn();
      spawned.push({ pid: child.pid, at: performance.now() });
      return child;
    },
  });
  try {
    assert.equal(await t.supervisor.add(t.spec), true);
    const entry = t.entry();
    const old = [...entry.active];
    const stoppedAt = new Map<number, number>();
    for (const i of old) {
      i.exited.then(() => stoppedAt.set(i.pid, performance.now()));
    }
    writeEcho(t.dir, "v2");
    spawned.length = 0;
    let fewest = Infinity;
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const json = entry.toJSON();
        fewest = Math.min(
          fewest,
          json.instances.filter((i) => i.status === "healthy").length,
        );
        const live = [...entry.active, ...entry.starting, ...entry.draining];
        most = Math.max(most, live.filter((i) => !i.exitStatus).length);
        // The sampling rate: what is measured is the replace as it runs.
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    assert.equal(await t.supervisor.replace("index", "binary-changed"), true);
    sampling = false;
    await sampler;
    assert.equal(fewest, 3, "three instances served throughout");
    assert.ok(most <= 4, `${most} processes ran at once (at most 3 + 1)`);
    assert.equal(spawned.length, 3, "one new instance per old one");
    assert.deepEqual(entry.active.map((i) => i.pid), spawned.map((s) => s.pid));
    // The first two old ones stopped before the next new one was spawned.
    for (let k = 0; k < 2; k++) {
      const stopped = stoppedAt.get(old[k]!.pid);
      assert.ok(stopped !== undefined, `old instance ${k} stopped`);
      assert.ok(
        stopped < spawned[k + 1]!.at,
        `old instance ${k} stopped before new instance ${k + 1} started`,
      );
    }
    for (const instance of entry.active) {
      const res = await fetch(instance.origin + "/x");
      assert.equal((await res.json()).tag, "v2");
    }
    assert.equal(entry.restarts, 1);
    assert.equal(entry.lastRestartReason, "binary-changed");
    assert.equal(entry.state.status, "healthy");
  } finally {
    await t.cleanup();
  }
});

Deno.test("a failed rolling replace keeps the instances not yet replaced serving", async () => {
  const t = setup(2);
  try {
    await t.supervisor.add(t.spec);
    const before = t.pids();
    writeEcho(t.dir, "v2", "export FAIL_HEALTH=1\n");
    t.spec.settings.startup_timeout_ms = 300;
    assert.equal(await t.supervisor.replace("index", "manual"), false);
    const entry = t.entry();
    assert.deepEqual(t.pids(), before);
    assert.equal(entry.state.status, "healthy");
    assert.match(entry.lastError ?? "", /Not healthy after 300 ms/);
    assert.equal(entry.starting.size, 0);
  } finally {
    await t.cleanup();
  }
});

Deno.test("a crashed instance is restarted alone while the others serve", async () => {
  const t = setup(3);
  try {
    await t.supervisor.add(t.spec);
    const entry = t.entry();
    const [crashing, ...others] = entry.active as [Instance, ...Instance[]];
    await (await fetch(crashing.origin + "/crash")).text().catch(() => "");
    assert.ok(
      await until(() => !t.pids().includes(crashing.pid)),
      "the crashed instance left the set",
    );
    assert.ok(await until(() => t.pids().length === 3), "a third came back");
    const now = t.pids();
    for (const other of others) {
      assert.ok(now.includes(other.pid), `instance ${other.pid} was kept`);
    }
    assert.equal(entry.restarts, 1);
    assert.equal(entry.lastRestartReason, "crashed");
    assert.ok(await until(() => entry.state.status === "healthy"));
    assert.equal(entry.lastError, null);
  } finally {
    await t.cleanup();
  }
});

Deno.test("max_requests recycles only the instance that reached it", async () => {
  const t = setup(2);
  try {
    t.spec.settings.max_requests = 3;
    await t.supervisor.add(t.spec);
    const [first, second] = t.pids();
    const upstream = t.table.match("/")!;
    // Alternating picks: 3 requests to the first instance, 2 to the second.
    for (let i = 0; i < 5; i++) upstream.acquire()!.release();
    assert.ok(
      await until(() => !t.pids().includes(first!)),
      "the first instance was replaced",
    );
    assert.ok(t.pids().includes(second!), "the second one was kept");
    assert.equal(t.pids().length, 2);
    assert.equal(t.entry().lastRestartReason, "max-requests");
  } finally {
    await t.cleanup();
  }
});

Deno.test("an instance that fails its health checks is replaced alone", async () => {
  const t = setup(2, { healthIntervalMs: 50 });
  try {
    await t.supervisor.add(t.spec);
    const [sick, well] = t.pids();
    Deno.writeTextFileSync(join(t.dir, "unhealthy-pid"), String(sick));
    assert.ok(
      await until(() => !t.pids().includes(sick!)),
      "the sick instance was replaced",
    );
    assert.ok(t.pids().includes(well!), "the healthy one was kept");
    assert.equal(t.entry().lastRestartReason, "health-failed");
    assert.ok(await until(() => t.entry().state.status === "healthy"));
  } finally {
    await t.cleanup();
  }
});

Deno.test("a change of instances alone starts or stops the difference and restarts nothing", async () => {
  const t = setup(2);
  try {
    await t.supervisor.add(t.spec);
    const before = t.pids();
    const more = { ...t.spec, settings: { ...t.spec.settings, instances: 3 } };
    assert.equal(await t.supervisor.update(more), "replaced");
    assert.equal(t.pids().length, 3);
    assert.deepEqual(t.pids().slice(0, 2), before, "the two kept serving");
    const fewer = { ...more, settings: { ...more.settings, instances: 1 } };
    assert.equal(await t.supervisor.update(fewer), "replaced");
    assert.deepEqual(t.pids(), [before[0]]);
    assert.equal(t.entry().restarts, 0);
    assert.equal(t.entry().state.status, "healthy");
  } finally {
    await t.cleanup();
  }
});

Deno.test("a config change that lowers instances replaces the rest and starts no instance only to stop it", async () => {
  let spawns = 0;
  const t = setup(3, {
    spawn: (command, options) => {
      spawns++;
      return new Deno.Command(command, options).spawn();
    },
  });
  try {
    await t.supervisor.add(t.spec);
    const before = t.pids();
    spawns = 0;
    const next = {
      ...t.spec,
      settings: { ...t.spec.settings, instances: 2, env: { V: "2" } },
    };
    assert.equal(await t.supervisor.update(next), "replaced");
    assert.equal(spawns, 2);
    assert.equal(t.pids().length, 2);
    for (const pid of t.pids()) assert.ok(!before.includes(pid));
    assert.equal(t.entry().lastRestartReason, "config-changed");
  } finally {
    await t.cleanup();
  }
});

Deno.test("an old instance that crashes during a rolling replace is replaced by a new one", async () => {
  const t = setup(3);
  try {
    await t.supervisor.add(t.spec);
    const entry = t.entry();
    const last = entry.active[2]!;
    // Each new instance takes a while to come up: the last old one crashes meanwhile.
    writeEcho(t.dir, "v2", "sleep 0.2\n");
    const replaced = t.supervisor.replace("index", "manual");
    assert.ok(
      await until(() => entry.starting.size > 0),
      "no new instance started",
    );
    await (await fetch(last.origin + "/crash")).text().catch(() => "");
    assert.equal(await replaced, true);
    assert.equal(entry.active.length, 3);
    for (const instance of entry.active) {
      const res = await fetch(instance.origin + "/x");
      assert.equal((await res.json()).tag, "v2");
    }
    assert.equal(entry.state.status, "healthy");
    assert.equal(entry.retryArmed, false);
  } finally {
    await t.cleanup();
  }
});
