// End-to-end: `deno task dev`'s runner restarts the server when its own source changes,
// and one Ctrl+C (SIGINT) still stops everything afterwards.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  alive,
  copyServer,
  makeProject,
  startServer,
  waitFor,
} from "./_helpers.ts";

Deno.test("the dev runner restarts the server on a server source change and stops on SIGINT", async () => {
  // The server's own source lives in the project root, as in this repository.
  const project = makeProject({ workers: { index: { TAG: "v1" } } });
  const source = copyServer(project.root);
  const runner = await startServer(project, ["--mode", "dev"], {
    main: join(source, "src", "dev", "runner.ts"),
  });
  try {
    const first = await runner.status();
    assert.notEqual(
      first.pid,
      runner.process.pid,
      "the server runs as the runner's child",
    );
    const now = new Date();
    Deno.utimeSync(join(source, "src", "version.ts"), now, now);
    await waitFor(
      async () => {
        const status = await runner.status();
        return status.pid !== first.pid &&
          status.workers[0]?.status === "healthy";
      },
      20000,
      "a new server process",
    );
    const second = await runner.status();
    assert.equal(alive(first.pid), false, "the old server is still running");
    assert.equal(
      alive(first.workers[0]!.pid!),
      false,
      "the old server's worker is still running",
    );
    const res = await fetch(`${runner.base}/x`);
    assert.equal((await res.json()).tag, "v1");
    Deno.kill(runner.process.pid, "SIGINT");
    const status = await runner.process.status;
    assert.equal(status.code, 0);
    await waitFor(
      () => !alive(second.pid) && !alive(second.workers[0]!.pid!),
      5000,
      "everything to stop",
    );
  } finally {
    await runner.stop();
    project.cleanup();
  }
});
