import assert from "node:assert/strict";
import { defaultConfig } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import { warnUnhonoured } from "./wiring.ts";

function warnings(): { log: Logger; keys: string[] } {
  const keys: string[] = [];
  const log: Logger = {
    debug() {},
    info() {},
    warn(msg, fields) {
      keys.push(`${msg}: ${fields?.key}`);
    },
    error() {},
    line() {},
  };
  return { log, keys };
}

Deno.test("warnUnhonoured() names the keys the mode cannot honour, and none of the defaults", () => {
  const config = defaultConfig();
  for (const mode of ["dev", "prod"] as const) {
    const { log, keys } = warnings();
    warnUnhonoured(config, mode, log);
    assert.deepEqual(keys, [], `${mode} defaults warned`);
  }
  for (const mode of ["dev", "prod"] as const) {
    const s = config.deployment[mode];
    s.build.check = true;
    s.build.format = "bundle";
    s.build.target = "x86_64-unknown-linux-gnu";
    s.file_watcher.enabled = true;
    s.resources.watch_resource_changes = true;
  }
  const dev = warnings();
  warnUnhonoured(config, "dev", dev.log);
  assert.deepEqual(dev.keys, [
    "setting not enforced: deployment.dev.build.check",
    "setting not enforced: deployment.dev.build.target",
  ]);
  // prod builds with deno, which checks types; it watches nothing.
  const prod = warnings();
  warnUnhonoured(config, "prod", prod.log);
  assert.deepEqual(prod.keys, [
    "setting not enforced: deployment.prod.build.target",
    "setting not enforced: deployment.prod.file_watcher.enabled",
    "setting not enforced: deployment.prod.resources.watch_resource_changes",
  ]);
});
