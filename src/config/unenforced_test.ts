import assert from "node:assert/strict";
import { defaultConfig } from "./defaults.ts";
import {
  restartOnlyChanges,
  unenforcedForWorkers,
  unenforcedSettings,
} from "./unenforced.ts";
import type { WorkerSpec } from "./discover.ts";
import { setLocations } from "./_locations.ts";

const keys = (config = defaultConfig(), mode: "dev" | "prod") =>
  unenforcedSettings(config, mode).map((s) => s.key);

Deno.test("unenforcedSettings() names the keys the mode cannot honour, and none of the defaults", () => {
  const config = defaultConfig();
  for (const mode of ["dev", "prod"] as const) {
    assert.deepEqual(keys(config, mode), [], `${mode} defaults warned`);
  }
  for (const mode of ["dev", "prod"] as const) {
    const s = config.deployment[mode];
    s.build.check = true;
    s.build.format = "bundle";
    s.build.target = "x86_64-unknown-linux-gnu";
    s.file_watcher.enabled = true;
    s.resources.watch_resource_changes = true;
  }
  assert.deepEqual(keys(config, "dev"), [
    "deployment.dev.build.check",
    "deployment.dev.build.target",
  ]);
  // prod builds with deno, which checks types; it watches nothing.
  assert.deepEqual(keys(config, "prod"), [
    "deployment.prod.build.target",
    "deployment.prod.file_watcher.enabled",
    "deployment.prod.resources.watch_resource_changes",
  ]);
});

Deno.test("unenforcedSettings() names the server timeouts Deno.serve cannot enforce only where a file sets them", () => {
  const config = defaultConfig();
  setLocations(
    config,
    new Map([["server.read_timeout_seconds", {
      file: "config/server.yaml",
      line: 3,
    }]]),
  );
  const found = unenforcedSettings(config, "prod");
  assert.deepEqual(found.map((s) => [s.key, s.where]), [
    ["server.read_timeout_seconds", "config/server.yaml:3"],
  ]);
});

Deno.test("unenforcedForWorkers() warns that worker_max_memory_mb does not limit Go and prebuilt workers", () => {
  const config = defaultConfig();
  const spec = (name: string, kind: WorkerSpec["kind"]) =>
    ({ name, kind }) as WorkerSpec;
  const specs = [spec("a", "typescript"), spec("b", "go"), spec("c", "binary")];
  assert.deepEqual(unenforcedForWorkers(specs, { config, mode: "prod" }), []);
  config.deployment.prod.resources.worker_max_memory_mb = 256;
  const found = unenforcedForWorkers(specs, { config, mode: "prod" });
  assert.equal(found.length, 2);
  assert.match(found[0]!, /worker "b": it is a Go worker/);
  assert.match(found[1]!, /worker "c" as DENO_V8_FLAGS/);
});

Deno.test("restartOnlyChanges() names the static routing keys a reload cannot apply", () => {
  const running = defaultConfig();
  const next = defaultConfig();
  next.server.static.cache_max_age_seconds = 1;
  assert.deepEqual(restartOnlyChanges(running, next), []);
  next.server.static.enabled = false;
  next.server.static.url_prefix = "/assets";
  assert.deepEqual(restartOnlyChanges(running, next), [
    "server.static.enabled",
    "server.static.url_prefix",
  ]);
});
