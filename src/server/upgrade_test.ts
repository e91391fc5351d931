import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../log/mod.ts";
import { selfCommand, SOURCE_V8_FLAGS, startSuccessor } from "./upgrade.ts";

function running(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

Deno.test("a successor that is not ready in time is killed with its whole process group", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "tq-successor-" });
  try {
    // Never says it is ready, ignores SIGTERM, and has started a child of its own.
    const script = join(dir, "successor.sh");
    Deno.writeTextFileSync(
      script,
      `#!/bin/sh\ntrap '' TERM\nsleep 60 &\necho $! > '${dir}/child'\necho $$ > '${dir}/self'\nwhile :; do sleep 1; done\n`,
      { mode: 0o755 },
    );
    Deno.chmodSync(script, 0o755);
    const started = Date.now();
    const result = await startSuccessor({
      logger: silentLogger,
      timeoutMs: 500,
      graceMs: 300,
      command: { command: script, args: [] },
    });
    const ms = Date.now() - started;
    assert.equal(result, undefined);
    const self = Number(Deno.readTextFileSync(join(dir, "self")));
    const child = Number(Deno.readTextFileSync(join(dir, "child")));
    assert.ok(!running(self), `the successor ${self} still runs`);
    assert.ok(!running(child), `the successor's child ${child} still runs`);
    assert.ok(ms >= 750, `gave up after ${ms} ms, before timeout + grace`);
    assert.ok(ms < 5000, `took ${ms} ms`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("stopping during an upgrade kills the successor that is still starting", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "tq-successor-" });
  try {
    const script = join(dir, "successor.sh");
    Deno.writeTextFileSync(
      script,
      `#!/bin/sh\necho $$ > '${dir}/self'\nexec sleep 60\n`,
      { mode: 0o755 },
    );
    Deno.chmodSync(script, 0o755);
    const abort = new AbortController();
    const pending = startSuccessor({
      logger: silentLogger,
      timeoutMs: 30_000,
      graceMs: 1000,
      command: { command: script, args: [] },
      signal: abort.signal,
    });
    setTimeout(() => abort.abort(), 300);
    assert.equal(await pending, undefined);
    const self = Number(Deno.readTextFileSync(join(dir, "self")));
    assert.ok(!running(self), `the successor ${self} still runs`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a source-mode successor runs with the V8 flags of `deno task start`", () => {
  const task = JSON.parse(
    Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)),
  ).tasks.start as string;
  assert.ok(task.includes(SOURCE_V8_FLAGS), `deno task start is: ${task}`);
  const { args } = selfCommand(["--mode", "prod"]);
  const main = args.indexOf(Deno.mainModule);
  assert.ok(main > 0, `no main module in ${args.join(" ")}`);
  assert.ok(
    args.slice(0, main).includes(SOURCE_V8_FLAGS),
    `the V8 flags are not passed to deno before the module: ${args.join(" ")}`,
  );
  assert.deepEqual(args.slice(main + 1), ["--mode", "prod"]);
});
