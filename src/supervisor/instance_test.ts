import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../log/mod.ts";
import { Instance } from "./instance.ts";
import { FakeClock } from "./_testing.ts";
import { waitFor } from "../../tests/_helpers.ts";

/** An instance of a shell script that ignores SIGTERM, on an injected clock. */
function stubborn(clock: FakeClock): { instance: Instance; dir: string } {
  const dir = Deno.makeTempDirSync({ prefix: "tq-inst-clock-" });
  const bin = join(dir, "stubborn");
  // "ready" once SIGTERM is ignored (sleep inherits that).
  Deno.writeTextFileSync(
    bin,
    "#!/bin/sh\ntrap '' TERM\necho ready\nexec sleep 30\n",
    { mode: 0o755 },
  );
  const instance = new Instance({
    name: "stubborn",
    command: bin,
    cwd: dir,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    port: 1,
    logger: silentLogger,
    clock,
  });
  return { instance, dir };
}

Deno.test("Instance times its drain and its stop's grace period on the injected clock", async (t) => {
  const clock = new FakeClock();
  const { instance, dir } = stubborn(clock);
  try {
    await waitFor(
      () => instance.recentOutput().includes("ready"),
      5000,
      "the script to ignore SIGTERM",
    );
    await t.step(
      "waitIdle() gives up when the clock's timer fires",
      async () => {
        const release = instance.begin();
        const idle = instance.waitIdle(60_000);
        assert.deepEqual([...clock.timers.values()].map((t) => t.ms), [60_000]);
        clock.fireNext();
        assert.equal(await idle, false);
        release();
        assert.equal(clock.timers.size, 0);
      },
    );
    await t.step(
      "stop() sends SIGKILL once the grace period passed on the clock",
      async () => {
        const stopped = instance.stop(60_000);
        assert.equal(instance.state, "stopping");
        assert.deepEqual([...clock.timers.values()].map((t) => t.ms), [
          60_000,
        ]);
        clock.fireNext();
        const status = await stopped;
        assert.equal(status.signal, "SIGKILL");
        assert.equal(instance.state, "exited");
      },
    );
  } finally {
    await instance.stop(0);
    Deno.removeSync(dir, { recursive: true });
  }
});
