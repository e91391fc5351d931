// A second tqserver in the same folder: it must not take the first one's PID
// file over (kill -HUP "$(cat logs/tqserver.pid)" would stop reaching it), and
// a port it finds taken names the tqserver that holds it.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  freePortRange,
  makeProject,
  startServer,
} from "./_helpers.ts";

Deno.test("a second server on the same PID file exits 1 naming the first (pid, ports), and a busy port names the tqserver holding it", async (t) => {
  const project = makeProject();
  const pidFile = join(project.root, "logs", "tqserver.pid");
  const first = await startServer(project);
  try {
    const pid = first.process.pid;
    assert.equal(Deno.readTextFileSync(pidFile).trim(), String(pid));
    const ports = [first.port, project.adminPort].sort((a, b) => a - b);
    // The ready line carries URLs one can click.
    assert.match(
      first.logs(),
      new RegExp(
        `tqserver ready url=http://127\\.0\\.0\\.1:${first.port}/ dashboard=http://127\\.0\\.0\\.1:${project.adminPort}/ `,
      ),
    );

    await t.step(
      "same pid_file, other ports (--config alt.yaml): refused",
      async () => {
        const pool = freePortRange(10);
        Deno.writeTextFileSync(
          join(project.root, "config", "alt.yaml"),
          `server:\n  host: 127.0.0.1\n  admin:\n    port: ${freePort()}\nworkers:\n  port_range_start: ${pool}\n  port_range_end: ${
            pool + 9
          }\n`,
        );
        const second = await startServer(
          project,
          ["--mode", "prod", "--config", "config/alt.yaml"],
          { waitReady: false },
        );
        const status = await second.process.status;
        await second.stop();
        assert.equal(status.code, 1, second.logs());
        assert.ok(
          second.logs().includes(
            `Another tqserver (pid ${pid}, ports ${ports[0]} and ${
              ports[1]
            }) runs with the PID file "${pidFile}" (server.pid_file): stop it first ("kill ${pid}")`,
          ),
          second.logs(),
        );
        assert.doesNotMatch(second.logs(), /worker started/);
        assert.equal(Deno.readTextFileSync(pidFile).trim(), String(pid));
      },
    );

    await t.step(
      "its own pid_file, the first one's admin port: the port's holder is named",
      async () => {
        Deno.writeTextFileSync(
          join(project.root, "config", "alt.yaml"),
          `server:\n  host: 127.0.0.1\n  pid_file: logs/other.pid\n  admin:\n    port: ${project.adminPort}\n`,
        );
        const third = await startServer(
          project,
          ["--mode", "prod", "--config", "config/alt.yaml"],
          { waitReady: false },
        );
        const status = await third.process.status;
        await third.stop();
        assert.equal(status.code, 1, third.logs());
        assert.ok(
          third.logs().includes(
            `Port ${project.adminPort} on "127.0.0.1" (server.admin.port) is already in use by tqserver (pid ${pid}, ports ${
              ports[0]
            } and ${ports[1]}); stop it ("kill ${pid}")`,
          ),
          third.logs(),
        );
        assert.equal(Deno.readTextFileSync(pidFile).trim(), String(pid));
      },
    );

    // The first server still answers the README's reload command.
    Deno.kill(Number(Deno.readTextFileSync(pidFile)), "SIGHUP");
    await first.waitForLog(/checked \d+ workers?/, 10_000);
  } finally {
    await first.stop();
    project.cleanup();
  }
});
