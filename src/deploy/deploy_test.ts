import assert from "node:assert/strict";
import { join } from "node:path";
import { runCommand, type RunFn } from "./_host.ts";
import { deploy, summaryLines } from "./deploy.ts";
import { rollback } from "./rollback.ts";
import { build, hasRsync, localDeploy } from "./_testing.ts";
import { formatFleet } from "./status.ts";

const read = (p: string) => Deno.readTextFileSync(p);

Deno.test({
  name:
    "deploy() to a directory keeps what it replaced or deleted, and rollback() restores every file of that deploy",
  ignore: !hasRsync,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "tq-deploy-unit-" });
    try {
      const { src, path, target, worker: w } = localDeploy(tmp, {
        dir: "target dir's",
        keepReleases: 2,
      });
      build(src, "v1", {
        "public/a.txt": "a1",
        "private/views/v.html": "v1",
        "public/gone.txt": "bye",
      });
      const first = await deploy({
        root: src,
        name: "t",
        target,
        workers: [w],
      });
      assert.equal(first.ok, true);
      assert.deepEqual(summaryLines(first), [
        `${path} deployed (4 files changed)`,
      ]);

      build(src, "v2", {
        "public/a.txt": "a2",
        "private/views/v.html": "v2",
        "public/new.txt": "new",
      });
      Deno.removeSync(join(src, "workers/index/public/gone.txt"));
      const second = await deploy({
        root: src,
        name: "t",
        target,
        workers: [w],
      });
      assert.equal(second.ok, true, JSON.stringify(second.hosts));
      assert.match(read(join(path, "workers/index/bin/index")), /v2/);
      assert.throws(() =>
        Deno.statSync(join(path, "workers/index/public/gone.txt"))
      );

      const back = await rollback({ target, reload: false });
      assert.equal(back.ok, true, JSON.stringify(back));
      assert.equal(back.id, second.id);
      assert.match(read(join(path, "workers/index/bin/index")), /v1/);
      assert.equal(read(join(path, "workers/index/public/a.txt")), "a1");
      assert.equal(
        read(join(path, "workers/index/private/views/v.html")),
        "v1",
      );
      assert.equal(
        read(join(path, "workers/index/public/gone.txt")),
        "bye",
        "a deleted file comes back",
      );
      assert.throws(
        () => Deno.statSync(join(path, "workers/index/public/new.txt")),
        "a created file goes",
      );
      assert.equal(read(join(path, ".tqdeploy/current")).trim(), first.id);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "deploy() fails a host whose staged files do not match the manifest, before its serving tree changes",
  ignore: !hasRsync,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "tq-deploy-unit-" });
    try {
      const { src, path, target, worker: w } = localDeploy(tmp);
      build(src, "v1", {});
      assert.equal(
        (await deploy({ root: src, name: "t", target, workers: [w] })).ok,
        true,
      );
      build(src, "v2", {});
      // A transfer that arrives damaged: one byte more in the staged binary.
      const run: RunFn = async (cmd, options) => {
        const res = await runCommand(cmd, options);
        const dest = cmd.at(-1) ?? "";
        if (cmd[0] === "rsync" && dest.endsWith(".tqdeploy/stage/")) {
          Deno.writeTextFileSync(join(dest, "workers/index/bin/index"), "X", {
            append: true,
          });
        }
        return res;
      };
      const result = await deploy({
        root: src,
        name: "t",
        target,
        workers: [w],
        run,
      });
      assert.equal(result.ok, false);
      assert.match(
        result.hosts[0]!.reason ?? "",
        /manifest mismatch: workers\/index\/bin\/index: FAILED/,
      );
      assert.match(read(join(path, "workers/index/bin/index")), /v1/);
      assert.throws(
        () => Deno.statSync(join(path, ".tqdeploy/stage")),
        "the stage is cleaned up",
      );
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("formatFleet() prints one row per worker and the reason for an unreachable host", () => {
  const text = formatFleet([
    {
      host: "web1",
      reachable: true,
      error: null,
      deploy_id: "20260101T000000Z-abcd",
      workers: [{
        name: "index",
        status: "healthy",
        binary_mtime: "2026-01-01T00:00:00.000Z",
        restarts: 2,
        last_error: null,
      }],
    },
    {
      host: "web2",
      reachable: false,
      error: "ssh to web2 failed: timeout",
      deploy_id: null,
      workers: [],
    },
  ]);
  const lines = text.split("\n");
  assert.match(
    lines[0]!,
    /^HOST\s+REACHABLE\s+DEPLOY\s+WORKER\s+STATE\s+BINARY MTIME\s+RESTARTS\s+LAST ERROR$/,
  );
  assert.match(
    lines[1]!,
    /^web1\s+yes\s+20260101T000000Z-abcd\s+index\s+healthy\s+2026-01-01T00:00:00.000Z\s+2\s+-$/,
  );
  assert.match(
    lines[2]!,
    /^web2\s+no\s+-\s+-\s+-\s+-\s+-\s+ssh to web2 failed: timeout$/,
  );
});

Deno.test({
  name:
    "a deploy or rollback stops before it changes anything while another holds the host's deploy lock, and releases its own",
  ignore: !hasRsync,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "tq-deploy-unit-" });
    try {
      const { src, path, target, worker: w } = localDeploy(tmp);
      build(src, "v1", { "public/a.txt": "a1" });
      const first = await deploy({
        root: src,
        name: "t",
        target,
        workers: [w],
      });
      assert.equal(first.ok, true, JSON.stringify(first.hosts));
      const lock = join(path, ".tqdeploy", "lock");
      assert.throws(() => Deno.statSync(lock), "a deploy leaves no lock");

      // Another deploy is under way (its lock, as it writes it).
      Deno.mkdirSync(lock);
      Deno.writeTextFileSync(
        join(lock, "owner"),
        "id=20260101T000000Z-abcd by=ci@build1 pid=42 at=2026-01-01T00:00:00Z\n",
      );
      build(src, "v2", { "public/a.txt": "a2" });
      await assert.rejects(
        () => deploy({ root: src, name: "t", target, workers: [w] }),
        /another deploy holds its lock \(id=20260101T000000Z-abcd by=ci@build1 pid=42 .*\); if none runs, remove .*\.tqdeploy\/lock/,
      );
      await assert.rejects(
        () => rollback({ target, reload: false }),
        /another deploy holds its lock/,
      );
      assert.match(read(join(path, "workers/index/bin/index")), /v1/);
      assert.equal(read(join(path, "workers/index/public/a.txt")), "a1");
      assert.equal(read(join(path, ".tqdeploy/current")).trim(), first.id);
      assert.match(read(join(lock, "owner")), /by=ci@build1/, "left alone");

      // Once the other one is done, the deploy goes through and unlocks.
      Deno.removeSync(lock, { recursive: true });
      const second = await deploy({
        root: src,
        name: "t",
        target,
        workers: [w],
      });
      assert.equal(second.ok, true, JSON.stringify(second.hosts));
      assert.match(read(join(path, "workers/index/bin/index")), /v2/);
      assert.throws(() => Deno.statSync(lock), "released after the deploy");
      const back = await rollback({ target, reload: false });
      assert.equal(back.ok, true, JSON.stringify(back));
      assert.match(read(join(path, "workers/index/bin/index")), /v1/);
      assert.throws(() => Deno.statSync(lock), "released after the rollback");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
