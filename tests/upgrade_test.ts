// End-to-end: the server replaces itself (SIGHUP after its own code changed) with zero failed requests.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  alive,
  copyServer,
  makeProject,
  startServer,
  waitFor,
} from "./_helpers.ts";
import { startLoad } from "./_load.ts";

Deno.test("a self-upgrade under load hands over the port with no failed request", async () => {
  const source = copyServer();
  const project = makeProject({ workers: { index: { TAG: "v1" } } });
  // A stand-in for systemd's notification socket (Type=notify, NotifyAccess=all).
  const notifyDir = Deno.makeTempDirSync();
  const notify = Deno.listenDatagram({
    transport: "unixpacket",
    path: join(notifyDir, "notify"),
  });
  const messages: string[] = [];
  (async () => {
    for await (const [data] of notify) {
      messages.push(new TextDecoder().decode(data));
    }
  })().catch(() => {});
  const server = await startServer(project, ["--mode", "prod"], {
    main: join(source, "main.ts"),
    env: { NOTIFY_SOCKET: join(notifyDir, "notify") },
  });
  let successorPid = 0;
  const load = startLoad(`${server.base}/x`, { concurrency: 4 });
  try {
    const before = await server.status();
    assert.equal(before.pid, server.process.pid);
    await waitFor(() => load.count() > 100, 10000, "load before the upgrade");
    const now = new Date();
    Deno.utimeSync(join(source, "src", "version.ts"), now, now);
    Deno.kill(server.process.pid, "SIGHUP");
    await server.waitForLog("server upgrade ready", 30000);
    const exit = await server.process.status;
    assert.equal(exit.code, 0);
    const after = await server.status();
    successorPid = after.pid;
    assert.notEqual(after.pid, before.pid);
    assert.equal(after.workers[0]!.status, "healthy");
    assert.notEqual(after.workers[0]!.pid, before.workers[0]!.pid);
    assert.equal(
      alive(before.workers[0]!.pid!),
      false,
      "the old server's worker is still running",
    );
    const count = load.count();
    await waitFor(
      () => load.count() > count + 100,
      10000,
      "load after the upgrade",
    );
    const result = await load.stop();
    assert.equal(
      result.failed,
      0,
      `failed requests: ${result.errors.join("\n")}`,
    );
  } finally {
    await load.stop();
    if (successorPid && alive(successorPid)) {
      Deno.kill(successorPid, "SIGTERM");
      await waitFor(() => !alive(successorPid), 10000, "the successor to stop")
        .catch(() => {
          Deno.kill(successorPid, "SIGKILL");
        });
    }
    await server.stop();
    project.cleanup();
    Deno.removeSync(source, { recursive: true });
    notify.close();
    Deno.removeSync(notifyDir, { recursive: true });
  }
});
