import assert from "node:assert/strict";
import { join } from "node:path";
import type { WorkerSpec } from "../config/mod.ts";
import {
  buildManifest,
  changedWorkers,
  DEPLOY_ID,
  listShipped,
  newDeployId,
  parseChanges,
  planShipment,
} from "./_release.ts";
import { binaryWorker, hasRsync } from "./_testing.ts";

function worker(root: string, name: string, withBinary = true): WorkerSpec {
  const dir = join(root, "workers", name);
  Deno.mkdirSync(join(dir, "bin"), { recursive: true });
  Deno.mkdirSync(join(dir, "src"), { recursive: true });
  Deno.mkdirSync(join(dir, "private", "views"), { recursive: true });
  Deno.writeTextFileSync(join(dir, "src", "main.ts"), "// source\n");
  Deno.writeTextFileSync(join(dir, "bin", `${name}.prev`), "old\n");
  Deno.writeTextFileSync(join(dir, "private", "views", "a.html"), "<p>\n");
  if (withBinary) {
    Deno.writeTextFileSync(join(dir, "bin", name), "#!/bin/sh\n", {
      mode: 0o755,
    });
    Deno.chmodSync(join(dir, "bin", name), 0o755);
  }
  return binaryWorker(dir, name, `/${name}`);
}

Deno.test({
  name:
    "planShipment() ships each worker without src/ and with only its own binary, plus config/; the manifest lists exactly that",
  ignore: !hasRsync,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "tq-plan-" });
    try {
      const a = worker(root, "a");
      const b = worker(root, "b", false);
      Deno.mkdirSync(join(root, "config"));
      Deno.writeTextFileSync(
        join(root, "config", "server.yaml"),
        "server: {}\n",
      );
      Deno.mkdirSync(join(root, "logs"));
      Deno.writeTextFileSync(join(root, "logs", "x.log"), "never shipped\n");
      const plan = await planShipment(root, [a, b], { workersDir: "workers" });
      assert.deepEqual(plan.skipped, ["b"]);
      assert.deepEqual(plan.extras, ["config"]);
      assert.equal(plan.rules.at(-1), "- *");
      const files = await listShipped(root, plan.rules);
      assert.deepEqual(files.sort(), [
        "config/server.yaml",
        "workers/a/bin/a",
        "workers/a/private/views/a.html",
      ]);
      const manifest = await buildManifest(root, files);
      assert.match(manifest, /^[0-9a-f]{64} {2}config\/server\.yaml$/m);
      assert.equal(manifest.trim().split("\n").length, 3);

      const only = await planShipment(root, [a], {
        workersDir: "workers",
        onlyWorkers: true,
      });
      assert.deepEqual((await listShipped(root, only.rules)).sort(), [
        "workers/a/bin/a",
        "workers/a/private/views/a.html",
      ]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("parseChanges() reads rsync --itemize-changes; changedWorkers() maps them to workers", () => {
  const changes = parseChanges([
    ">f.st...... workers/a/bin/a",
    "cd+++++++++ workers/a/public/img/",
    ">f+++++++++ workers/a/public/img/x.png",
    ".d..t...... workers/a/",
    "*deleting   workers/a/private/views/old.html",
    "cL+++++++++ workers/a/public/link -> x",
    "<f..t...... config/server.yaml",
  ].join("\n"));
  assert.deepEqual(changes, [
    { kind: "updated", path: "workers/a/bin/a" },
    { kind: "created", path: "workers/a/public/img/" },
    { kind: "created", path: "workers/a/public/img/x.png" },
    { kind: "deleted", path: "workers/a/private/views/old.html" },
    { kind: "created", path: "workers/a/public/link" },
    { kind: "updated", path: "config/server.yaml" },
  ]);
  const shipped = [{
    name: "a",
    dir: "workers/a",
    bin: "workers/a/bin/a",
    binMtimeMs: 0,
  }];
  assert.deepEqual(changedWorkers(changes, shipped), {
    workers: [{
      name: "a",
      binary: true,
      private: true,
      public: true,
      other: false,
    }],
    config: true,
  });
});

Deno.test("newDeployId() is sortable by time and matches DEPLOY_ID", () => {
  const a = newDeployId(new Date("2026-01-02T03:04:05.678Z"));
  assert.match(a, /^20260102T030405Z-[0-9a-f]{4}$/);
  assert.match(a, DEPLOY_ID);
  assert.ok(newDeployId(new Date("2026-01-02T03:04:06Z")) > a);
  assert.doesNotMatch("x; rm -rf /", DEPLOY_ID);
});
