import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultConfig } from "../config/mod.ts";
import { createLogger } from "../log/mod.ts";
import { servedFiles } from "./served_files.ts";

Deno.test("a reloaded config replaces the static handler and compressor; routing keys wait for a restart", async () => {
  const root = await Deno.makeTempDir({ prefix: "tq_served_" });
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
  try {
    await Deno.mkdir(join(root, "workers", "w", "public"), { recursive: true });
    await Deno.writeTextFile(
      join(root, "workers", "w", "public", "a.txt"),
      "a",
    );
    const config = defaultConfig();
    const served = servedFiles(config, { root, logger: log });
    const first = served.static!;
    const res = await first(new Request("http://x/static/w/a.txt"));
    assert.equal(await res.text(), "a");

    served.reconfigure(structuredClone(config));
    assert.equal(served.static, first, "an unchanged config keeps the cache");

    const next = structuredClone(config);
    next.server.static.cache_max_age_seconds = 5;
    next.server.static.url_prefix = "/assets";
    next.server.compression.enabled = false;
    served.reconfigure(next);
    assert.notEqual(served.static, first);
    assert.equal(served.compress, undefined);
    const again = await served.static!(new Request("http://x/static/w/a.txt"));
    assert.equal(again.headers.get("cache-control"), "public, max-age=5");
    await again.body?.cancel();
    assert.ok(
      lines.some((l) =>
        l.includes("WARN") && l.includes("server.static.url_prefix")
      ),
      lines.join("\n"),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
