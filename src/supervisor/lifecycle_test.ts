import assert from "node:assert/strict";
import { join } from "node:path";
import { Backoff } from "./backoff.ts";
import {
  FakeClock,
  setupSupervisor,
  until,
  writeEcho,
  writeScript,
} from "./_testing.ts";
import { IllegalTransitionError } from "./instance.ts";
import type { SupervisorOptions } from "./supervisor.ts";
import { WorkerEntry } from "./worker.ts";
import { silentLogger } from "../log/mod.ts";

/** True while `pid` runs (a zombie waiting to be reaped does not count). */
function running(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

function setup(options: Partial<SupervisorOptions> = {}, route = "/") {
  return setupSupervisor({ prefix: "tq-life-", route, supervisor: options });
}

Deno.test("a worker that forks a child and then crashes: the child is gone within 2 s", async () => {
  const t = setup();
  try {
    writeEcho(t.dir, "v1", `sleep 60 & echo $! > '${t.dir}/child.pid'\n`);
    assert.equal(await t.supervisor.add(t.spec), true);
    const child = Number(Deno.readTextFileSync(join(t.dir, "child.pid")));
    assert.ok(running(child), "the forked child runs");
    const origin = t.supervisor.workers.get("index")!.active[0]!.origin;
    await (await fetch(origin + "/crash")).text();
    assert.ok(
      await until(() => !running(child), 2000),
      `the crashed worker's child ${child} still runs 2 s later`,
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("a worker that ignores SIGTERM is SIGKILLed after the grace period on replace", async () => {
  const t = setup();
  t.config.workers.shutdown_grace_period_ms = 700;
  try {
    writeEcho(t.dir, "v1", "export IGNORE_TERM=1\n");
    await t.supervisor.add(t.spec);
    const entry = t.supervisor.workers.get("index")!;
    const old = entry.active[0]!;
    writeEcho(t.dir, "v2");
    assert.equal(await t.supervisor.replace("index", "manual"), true);
    const replacedAt = Date.now();
    const status = await old.exited;
    const ms = Date.now() - replacedAt;
    assert.equal(status.signal, "SIGKILL", "it took SIGKILL to stop it");
    assert.ok(ms >= 600, `killed after ${ms} ms, before the 700 ms grace`);
    assert.ok(ms < 4000, `killed only after ${ms} ms`);
    assert.ok(await until(() => entry.draining.size === 0, 3000));
  } finally {
    await t.cleanup();
  }
});

Deno.test("the crash backoff doubles from 100 ms to 30 s and resets after 10 s up", () => {
  const backoff = new Backoff();
  const seen = Array.from({ length: 11 }, () => backoff.next());
  assert.deepEqual(seen, [
    100,
    200,
    400,
    800,
    1600,
    3200,
    6400,
    12800,
    25600,
    30000,
    30000,
  ]);
  backoff.ended(9_999);
  assert.equal(backoff.next(), 30000, "9.999 s up is not stable");
  backoff.ended(10_000);
  assert.equal(backoff.next(), 100, "10 s up starts again");
  assert.equal(backoff.next(), 200);
});

Deno.test("a crashing worker is retried after 100, 200, 400, 800 ms (fake clock) with Retry-After", async () => {
  const clock = new FakeClock();
  const t = setup({ clock });
  try {
    writeScript(t.dir, "index", "echo 'boom'\nexit 1\n");
    assert.equal(await t.supervisor.add(t.spec), false);
    const entry = t.supervisor.workers.get("index")!;
    for (let i = 0; i < 3; i++) {
      assert.equal(entry.state.status, "crashed");
      assert.equal(clock.timers.size, 1, "exactly one retry is armed");
      clock.fireNext();
      // The retry spawns the worker, which exits at once and arms the next one.
      assert.ok(
        await until(() => clock.timers.size === 1 && !entry.running, 5000),
      );
    }
    assert.deepEqual(clock.delays, [100, 200, 400, 800]);
    assert.match(entry.lastError ?? "", /Exited during startup with code 1/);
    assert.match(entry.lastError ?? "", /"boom"/);
    assert.equal(entry.view.retryAfterSeconds(), 1);
  } finally {
    await t.cleanup();
  }
});

Deno.test("an illegal worker transition throws when strict", () => {
  const spec = setup().spec;
  const entry = new WorkerEntry(spec, {
    logger: silentLogger,
    onMaxRequests: () => {},
    strict: true,
  });
  assert.throws(
    () => entry.transition({ status: "unhealthy", error: "x" }),
    IllegalTransitionError,
  );
  entry.transition({ status: "healthy" });
  entry.transition({ status: "stopping" });
  assert.throws(
    () => entry.transition({ status: "healthy" }),
    /Illegal transition of worker "index": "stopping" to "healthy"/,
  );
  Deno.removeSync(join(spec.dir, "..", ".."), { recursive: true });
});

Deno.test("an instance that crashes while a replace is under way leaves no retry armed", async () => {
  const t = setup();
  try {
    await t.supervisor.add(t.spec);
    const entry = t.supervisor.workers.get("index")!;
    const origin = entry.active[0]!.origin;
    // The new instance takes a while to come up: the old one crashes meanwhile.
    writeEcho(t.dir, "v2", "sleep 0.6\n");
    const replaced = t.supervisor.replace("index", "manual");
    assert.ok(
      await until(() => entry.starting.size > 0, 5000),
      "the new instance never started",
    );
    await (await fetch(origin + "/crash")).text();
    assert.equal(await replaced, true);
    const fresh = entry.active[0]!.pid;
    assert.equal(entry.retryArmed, false);
    assert.equal(entry.state.status, "healthy");
    assert.equal(entry.lastError, null);
    // What is tested is that nothing happens: no condition to wait for, only time.
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(
      entry.active[0]?.pid,
      fresh,
      "the fresh instance was replaced",
    );
    assert.equal(entry.restarts, 1);
  } finally {
    await t.cleanup();
  }
});

Deno.test("a changed route switches only once its new instance is healthy", async (s) => {
  const t = setup({}, "/old");
  try {
    await t.supervisor.add(t.spec);
    const entry = t.supervisor.workers.get("index")!;
    await s.step(
      "while the new instance starts, the old route serves",
      async () => {
        writeEcho(t.dir, "v2", "sleep 0.4\n");
        const updated = t.supervisor.update({ ...t.spec, route: "/new" });
        assert.ok(
          await until(() => entry.starting.size > 0, 5000),
          "the new instance never started",
        );
        assert.equal(t.table.match("/new/x"), undefined);
        assert.equal(t.table.match("/old/x")?.name, "index");
        assert.equal(await updated, "replaced");
        assert.equal(t.table.match("/old/x"), undefined);
        assert.equal(t.table.match("/new/x")?.route, "/new");
      },
    );
    await s.step(
      "when the new instance fails, the old route stays for good",
      async () => {
        writeEcho(t.dir, "broken", "export FAIL_HEALTH=1\n");
        const spec = {
          ...t.spec,
          route: "/other",
          settings: { ...t.spec.settings, startup_timeout_ms: 400 },
        };
        assert.equal(await t.supervisor.update(spec), "failed");
        assert.equal(t.table.match("/other/x"), undefined);
        const target = t.table.match("/new/x")!.acquire()!;
        target.release();
        const body = await (await fetch(target.origin + "/x")).json();
        assert.equal(body.tag, "v2");
        assert.equal(entry.route, "/new");
      },
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("a failed health check names the URL probed, TQ_PORT and what the worker printed", async () => {
  const t = setup();
  try {
    writeScript(
      t.dir,
      "index",
      'echo "listening on port 8000, not $TQ_PORT"\nexec sleep 30\n',
    );
    t.spec.settings.startup_timeout_ms = 500;
    assert.equal(await t.supervisor.add(t.spec), false);
    const error = t.supervisor.workers.get("index")!.lastError ?? "";
    assert.match(error, /Not healthy after 500 ms/);
    const port = error.match(/TQ_PORT=(\d+)/)?.[1];
    assert.ok(port, error);
    assert.match(error, new RegExp(`http://127\\.0\\.0\\.1:${port}/health`));
    assert.match(error, /listening on port 8000, not \d+/, error);
  } finally {
    await t.cleanup();
  }
});

Deno.test("a worker being removed shows as stopping while it drains", async () => {
  const t = setup();
  try {
    await t.supervisor.add(t.spec);
    const target = t.table.match("/")!.acquire()!;
    const slow = fetch(target.origin + "/slow?ms=600").then((r) => r.text())
      .finally(() => target.release());
    // acquire() counted the request in flight: the drain waits for it.
    assert.equal(t.supervisor.workers.get("index")!.active[0]!.inFlight, 1);
    const removed = t.supervisor.remove("index");
    assert.equal(t.supervisor.status()[0]?.status, "stopping");
    assert.equal(t.table.match("/"), undefined, "no new request goes there");
    assert.equal(await slow, "slow v1");
    await removed;
    assert.deepEqual(t.supervisor.status(), []);
  } finally {
    await t.cleanup();
  }
});

Deno.test("acquireWithin() waits for the replacement of an instance that just died", async () => {
  const t = setup();
  try {
    await t.supervisor.add(t.spec);
    const view = t.table.match("/")!;
    const first = view.acquire()!;
    first.release();
    await (await fetch(first.origin + "/crash")).text();
    // Polls without leaking an in-flight count: what it acquires it releases.
    const gone = await until(() => {
      const target = view.acquire();
      target?.release();
      return target === undefined;
    }, 2000);
    assert.ok(gone, "the crashed instance was still offered 2 s later");
    const started = Date.now();
    const next = await view.acquireWithin!(5000);
    assert.ok(next, `no instance within ${Date.now() - started} ms`);
    next.release();
    assert.notEqual(next.origin, first.origin);
  } finally {
    await t.cleanup();
  }
});

Deno.test("removing a worker whose start hangs in its health check does not wait for startup_timeout_ms", async () => {
  const t = setup();
  try {
    writeScript(
      t.dir,
      "index",
      `echo $$ > '${t.dir}/self.pid'\nexec sleep 60\n`,
    );
    t.spec.settings.startup_timeout_ms = 20_000;
    const added = t.supervisor.add(t.spec);
    assert.ok(
      await until(() => {
        try {
          return Deno.statSync(join(t.dir, "self.pid")).size > 0;
        } catch {
          return false;
        }
      }, 5000),
      "the instance never started",
    );
    const pid = Number(Deno.readTextFileSync(join(t.dir, "self.pid")));
    const started = Date.now();
    await t.supervisor.remove("index");
    const ms = Date.now() - started;
    assert.ok(ms < 5000, `the remove waited ${ms} ms for the start`);
    assert.equal(await added, false);
    assert.ok(!running(pid), `the starting instance ${pid} still runs`);
    assert.deepEqual(t.supervisor.status(), []);
  } finally {
    await t.cleanup();
  }
});
