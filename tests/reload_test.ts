// End-to-end: prod mode SIGHUP / admin reload restarts exactly what changed, with zero failed requests.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  alive,
  makeProject,
  startServer,
  waitFor,
  writeEchoBinary,
} from "./_helpers.ts";
import { startLoad } from "./_load.ts";

async function tagOf(url: string): Promise<string> {
  return (await (await fetch(url)).json()).tag;
}

Deno.test("three binary replacements under load with SIGHUP fail no request", async () => {
  const project = makeProject({ workers: { index: { TAG: "v1" } } });
  const server = await startServer(project);
  const load = startLoad(`${server.base}/x`);
  try {
    const oldPids: number[] = [];
    for (const version of ["v2", "v3", "v4"]) {
      const before = (await server.status()).workers[0]!;
      oldPids.push(before.pid!);
      writeEchoBinary(project.root, "index", { TAG: version });
      Deno.kill(server.process.pid, "SIGHUP");
      await waitFor(
        async () => (await tagOf(`${server.base}/x`)) === version,
        15000,
        `tag ${version}`,
      );
      const after = (await server.status()).workers[0]!;
      assert.notEqual(after.pid, before.pid);
      assert.equal(after.last_restart_reason, "binary-changed");
      // Keep the load going on the new instance for a while before the next deploy.
      const served = load.count();
      await waitFor(
        () => load.count() >= served + 100,
        10000,
        `100 requests of the load on ${version}`,
      );
    }
    await waitFor(() => load.count() > 200, 10000, "some load");
    const result = await load.stop();
    assert.equal(
      result.failed,
      0,
      `failed requests: ${result.errors.join("\n")}`,
    );
    assert.ok(result.ok > 200, `only ${result.ok} requests`);
    assert.deepEqual(result.tags, ["v1", "v2", "v3", "v4"]);
    await waitFor(
      () => oldPids.every((pid) => !alive(pid)),
      10000,
      "old instances to stop",
    );
  } finally {
    await load.stop();
    await server.stop();
    project.cleanup();
  }
});

Deno.test("SIGHUP restarts exactly what changed", async (t) => {
  const project = makeProject({
    workers: { index: {}, signalled: { RELOAD_SIGNAL: "SIGUSR1" }, plain: {} },
  });
  for (const name of ["signalled", "plain"]) {
    Deno.writeTextFileSync(
      join(project.root, "workers", name, "private", "message.txt"),
      "first",
    );
  }
  const server = await startServer(project);
  const pids = async () =>
    Object.fromEntries(
      (await server.status()).workers.map((w) => [w.name, w.pid]),
    ) as Record<string, number>;
  const hup = async () => {
    const res = await fetch(`${server.admin}/api/reload`, {
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    return (await res.json()).report;
  };
  try {
    await t.step("nothing changed: no PID changes", async () => {
      const before = await pids();
      Deno.kill(server.process.pid, "SIGHUP");
      await server.waitForLog(
        /checked \d+ workers? in \d+ ms: nothing changed/,
      );
      assert.deepEqual(await pids(), before);
    });

    await t.step(
      "private/ change: signal for a worker with X-TQ-Reload, replace for one without",
      async () => {
        const before = await pids();
        assert.equal(
          await (await fetch(`${server.base}/signalled/private`)).text(),
          "first reloads=0",
        );
        for (const name of ["signalled", "plain"]) {
          Deno.writeTextFileSync(
            join(project.root, "workers", name, "private", "message.txt"),
            "second",
          );
        }
        const report = await hup();
        const actions = Object.fromEntries(
          report.actions.map((
            a: { worker: string; action: string },
          ) => [a.worker, a.action]),
        );
        assert.deepEqual(actions, {
          signalled: "signalled",
          plain: "replaced",
        });
        const after = await pids();
        assert.equal(after.signalled, before.signalled);
        assert.notEqual(after.plain, before.plain);
        assert.equal(after.index, before.index);
        await waitFor(async () =>
          (await (await fetch(`${server.base}/signalled/private`)).text()) ===
            "second reloads=1"
        );
        assert.equal(
          await (await fetch(`${server.base}/plain/private`)).text(),
          "second reloads=0",
        );
      },
    );

    await t.step("public/ change restarts nothing", async () => {
      const before = await pids();
      Deno.writeTextFileSync(
        join(project.root, "workers", "index", "public", "new.css"),
        "body{}",
      );
      const report = await hup();
      assert.deepEqual(
        report.actions.map((a: { action: string }) => a.action),
        ["none"],
      );
      assert.deepEqual(await pids(), before);
    });

    await t.step(
      "a garbage binary keeps the old instance serving and reports the error",
      async () => {
        const before = await pids();
        const bin = join(project.root, "workers", "index", "bin", "index");
        Deno.writeFileSync(
          bin + ".new",
          new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3, 0, 0, 9]),
          { mode: 0o755 },
        );
        Deno.renameSync(bin + ".new", bin);
        const report = await hup();
        assert.equal(report.actions[0].action, "failed");
        const index = (await server.status()).workers.find((w) =>
          w.name === "index"
        )!;
        assert.equal(index.status, "healthy");
        assert.equal(index.pid, before.index);
        assert.ok(index.last_error && index.last_error.length > 0);
        const res = await fetch(`${server.base}/`);
        assert.equal(res.status, 200);
        await res.body?.cancel();
        // The next good deploy recovers.
        writeEchoBinary(project.root, "index", { TAG: "good" });
        const next = await hup();
        assert.equal(
          next.actions[0].action,
          "replaced",
          JSON.stringify(next.actions),
        );
        assert.equal(await tagOf(`${server.base}/`), "good");
        assert.equal(
          (await server.status()).workers.find((w) => w.name === "index")!
            .last_error,
          null,
        );
      },
    );

    await t.step(
      "a bad config on reload is rejected and the server keeps serving",
      async () => {
        const path = join(project.root, "config", "server.yaml");
        const good = Deno.readTextFileSync(path);
        Deno.writeTextFileSync(
          path,
          good + "  default:\n    instances: many\n",
        );
        const report = await hup();
        assert.equal(report.config, "rejected");
        assert.match(report.config_error, /server\.yaml:\d+/);
        const res = await fetch(`${server.base}/`);
        assert.equal(res.status, 200);
        await res.body?.cancel();
        Deno.writeTextFileSync(path, good);
        assert.equal((await hup()).config, "applied");
      },
    );

    await t.step("a worker folder added, then removed", async () => {
      writeEchoBinary(project.root, "added", { TAG: "added" });
      const report = await hup();
      assert.deepEqual(
        report.actions.map((
          a: { worker: string; action: string },
        ) => [a.worker, a.action]),
        [
          ["added", "started"],
        ],
      );
      assert.equal(await tagOf(`${server.base}/added`), "added");
      const pid = (await pids()).added!;
      Deno.removeSync(join(project.root, "workers", "added"), {
        recursive: true,
      });
      const removed = await hup();
      assert.deepEqual(
        removed.actions.map((
          a: { worker: string; action: string },
        ) => [a.worker, a.action]),
        [
          ["added", "stopped"],
        ],
      );
      assert.equal(await tagOf(`${server.base}/added`), "good");
      await waitFor(() => !alive(pid), 5000, "removed worker to stop");
    });
  } finally {
    await server.stop();
    project.cleanup();
  }
});

Deno.test("a SIGHUP that replaces a worker also drops its cached public/ files", async () => {
  const project = makeProject();
  const config = join(project.root, "config", "server.yaml");
  // A cached file would otherwise be served unchanged for ten minutes.
  Deno.writeTextFileSync(
    config,
    Deno.readTextFileSync(config).replace(
      "server:\n",
      "server:\n  static:\n    revalidate_ms: 600000\n",
    ),
  );
  const css = join(project.root, "workers", "index", "public", "app.css");
  Deno.writeTextFileSync(css, "body{color:red}");
  const server = await startServer(project);
  try {
    const url = `${server.base}/static/index/app.css`;
    assert.equal(await (await fetch(url)).text(), "body{color:red}");
    assert.equal(await (await fetch(url)).text(), "body{color:red}");
    // One deploy changes the binary and public/ together.
    const later = new Date(Date.now() + 2000);
    Deno.writeTextFileSync(css, "body{color:blue}");
    Deno.utimeSync(css, later, later);
    writeEchoBinary(project.root, "index", { TAG: "v2" });
    const res = await fetch(`${server.admin}/api/reload`, {
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    const { report } = await res.json();
    const changes = report.actions.map((
      a: { change: string; action: string },
    ) => `${a.change}:${a.action}`).sort();
    assert.deepEqual(changes, ["binary:replaced", "public:none"]);
    assert.equal(await tagOf(`${server.base}/`), "v2");
    assert.equal(await (await fetch(url)).text(), "body{color:blue}");
  } finally {
    await server.stop();
    project.cleanup();
  }
});
