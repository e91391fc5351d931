import assert from "node:assert/strict";
import { summarizeReload } from "./check.ts";

Deno.test("summarizeReload() names each restart with its SPEC §5 reason", () => {
  const line = summarizeReload({
    ms: 14,
    workers: 3,
    config: "unchanged",
    actions: [
      { worker: "index", change: "binary", action: "replaced" },
      { worker: "api", change: "private", action: "signalled" },
      { worker: "tqserver", change: "server", action: "upgraded" },
    ],
  });
  assert.equal(
    line,
    "checked 3 workers in 14 ms: 1 replaced (binary-changed), 1 signalled (private-changed), 1 upgraded (server-upgrade)",
  );
  assert.equal(
    summarizeReload({ ms: 2, workers: 1, config: "unchanged", actions: [] }),
    "checked 1 worker in 2 ms: nothing changed",
  );
});
