import assert from "node:assert/strict";
import { parseCliArgs } from "./args.ts";

Deno.test("parseCliArgs reads every documented flag", () => {
  const args = parseCliArgs([
    "--mode",
    "prod",
    "--config",
    "c.yaml",
    "--root",
    "/r",
    "--port",
    "9090",
    "--quiet",
  ]);
  assert.deepEqual(args, {
    mode: "prod",
    config: "c.yaml",
    root: "/r",
    port: 9090,
    quiet: true,
    help: false,
    version: false,
  });
});

Deno.test("parseCliArgs rejects an unknown flag, a bad mode and a bad port by name", () => {
  assert.throws(() => parseCliArgs(["--bogus"]), /bogus/);
  assert.throws(() => parseCliArgs(["--mode", "staging"]), /--mode "staging"/);
  assert.throws(() => parseCliArgs(["--port", "70000"]), /--port "70000"/);
  assert.throws(() => parseCliArgs(["--port", "8o"]), /--port "8o"/);
});
