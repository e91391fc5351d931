import assert from "node:assert/strict";
import { defaultConfig } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import { createBuilders } from "./wiring.ts";

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

Deno.test("createBuilders() warns about build keys the mode's builds cannot honour, and only those", async () => {
  const root = await Deno.makeTempDir({ prefix: "tq-wiring-" });
  try {
    const config = defaultConfig();
    for (const mode of ["dev", "prod"] as const) {
      const { log, keys } = warnings();
      const { builder } = createBuilders(root, config, mode, log);
      await builder.close();
      assert.deepEqual(keys, [], `${mode} defaults warned`);
    }
    config.deployment.dev.build.check = true;
    config.deployment.dev.build.target = "x86_64-unknown-linux-gnu";
    config.deployment.prod.build.check = true;
    config.deployment.prod.build.target = "x86_64-unknown-linux-gnu";
    const dev = warnings();
    await createBuilders(root, config, "dev", dev.log).builder.close();
    assert.deepEqual(dev.keys, [
      "setting not enforced: deployment.dev.build.check",
      "setting not enforced: deployment.dev.build.target",
    ]);
    // prod compiles with deno, which checks types and honours the target.
    const prod = warnings();
    await createBuilders(root, config, "prod", prod.log).builder.close();
    assert.deepEqual(prod.keys, []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
