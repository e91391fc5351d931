import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../log/mod.ts";
import { TqServer } from "./server.ts";

Deno.test("a shutdown that fails part way still finishes, with exit code 1", async () => {
  const root = Deno.makeTempDirSync({ prefix: "tq-shutdown-" });
  try {
    Deno.mkdirSync(join(root, "workers"));
    Deno.mkdirSync(join(root, "config"));
    Deno.writeTextFileSync(
      join(root, "config", "server.yaml"),
      "server:\n  host: 127.0.0.1\n  port: 0\n  admin:\n    enabled: false\n",
    );
    const server = await TqServer.start({
      root,
      mode: "prod",
      logger: silentLogger,
      devHooks: () => ({
        handle: () => new Response(null, { status: 404 }),
        transform: (res) => res,
        close: () => Promise.reject(new Error("standby would not stop")),
      }),
    });
    assert.ok(server.port > 0);
    await server.shutdown();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finished = await Promise.race([
      server.finished.then(() => true),
      new Promise<false>((resolve) =>
        timer = setTimeout(() => resolve(false), 5000)
      ),
    ]);
    clearTimeout(timer);
    assert.ok(
      finished,
      "the server never finished: main() would wait for ever",
    );
    assert.equal(server.exitCode, 1);
    assert.equal(
      Deno.statSync(join(root, "logs")).isDirectory,
      true,
      "the PID file's folder was never made",
    );
    assert.throws(
      () => Deno.statSync(join(root, "logs", "tqserver.pid")),
      Deno.errors.NotFound,
      "the PID file outlived the stop",
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
