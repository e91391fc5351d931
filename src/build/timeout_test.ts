import assert from "node:assert/strict";
import { join } from "node:path";
import { Builder } from "./builder.ts";

/** A stand-in for deno that hangs: writes its pid, then sleeps. */
function hangingDeno(dir: string): string {
  const path = join(dir, "deno");
  Deno.writeTextFileSync(
    path,
    `#!/bin/sh\necho $$ >> '${dir}/pids'\nexec sleep 30\n`,
    { mode: 0o755 },
  );
  Deno.chmodSync(path, 0o755);
  return path;
}

function running(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

function target(dir: string) {
  Deno.mkdirSync(join(dir, "w", "src"), { recursive: true });
  Deno.writeTextFileSync(join(dir, "w", "src", "main.ts"), "export {};\n");
  return {
    name: "w",
    entry: join(dir, "w", "src", "main.ts"),
    binPath: join(dir, "w", "bin", "w"),
    dir: join(dir, "w"),
  };
}

Deno.test("a build that runs past build.timeout_ms is killed and fails naming the key", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "tq-build-timeout-" });
  try {
    const builder = new Builder({
      denoPath: hangingDeno(dir),
      timeoutMs: 300,
      timeoutKey: "deployment.dev.build.timeout_ms",
    });
    const started = Date.now();
    const result = await builder.build(target(dir), { force: true });
    const ms = Date.now() - started;
    assert.equal(result.status, "failed");
    assert.match(
      result.error?.message ?? "",
      /deno bundle of "w" ran longer than 300 ms and was killed \(deployment\.dev\.build\.timeout_ms\)/,
    );
    // deno info and deno bundle each get the timeout; neither may hang the build.
    assert.ok(ms < 5000, `the build took ${ms} ms`);
    const pids = Deno.readTextFileSync(join(dir, "pids")).trim().split("\n")
      .map(Number);
    assert.ok(pids.length >= 1);
    for (const pid of pids) assert.ok(!running(pid), `deno ${pid} still runs`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("an aborted build kills its deno command and fails as cancelled", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "tq-build-abort-" });
  try {
    const builder = new Builder({ denoPath: hangingDeno(dir) });
    const abort = new AbortController();
    const pending = builder.build(target(dir), {
      force: true,
      signal: abort.signal,
    });
    setTimeout(() => abort.abort(), 200);
    const result = await pending;
    assert.equal(result.status, "failed");
    assert.match(result.error?.message ?? "", /cancelled/);
    const pids = Deno.readTextFileSync(join(dir, "pids")).trim().split("\n")
      .map(Number);
    for (const pid of pids) assert.ok(!running(pid), `deno ${pid} still runs`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
