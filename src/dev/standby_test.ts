import assert from "node:assert/strict";
import { join } from "node:path";
import { StandbyPool } from "./standby.ts";
import { killGroup } from "../supervisor/mod.ts";
import { waitFor } from "../../tests/_helpers.ts";

const WORKER = `
const port = Number(Deno.env.get("TQ_PORT"));
const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, () =>
  Response.json({
    pid: Deno.pid,
    port: Deno.env.get("TQ_PORT"),
    name: Deno.env.get("TQ_WORKER_NAME"),
    preload: Deno.env.get("TQ_STANDBY_PRELOAD") ?? null,
    main: import.meta.main,
  }));
Deno.addSignalListener("SIGTERM", () => server.shutdown().then(() => Deno.exit(0)));
`;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function answer(port: number): Promise<Record<string, unknown>> {
  return waitFor(
    async () => await (await fetch(`http://127.0.0.1:${port}/`)).json(),
    10_000,
    `the worker on port ${port} to answer`,
  );
}

Deno.test("StandbyPool hands a warm process the next start, with its port and env, and starts plainly when the env differs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tq-standby-" });
  const binPath = join(dir, "w");
  const module = `${binPath}.js`;
  await Deno.writeTextFile(module, WORKER);
  await Deno.writeTextFile(
    binPath,
    `#!/bin/sh\nexec '${Deno.execPath()}' run --no-config --allow-all "$0.js"\n`,
    { mode: 0o755 },
  );
  await Deno.chmod(binPath, 0o755);
  const pool = new StandbyPool({
    delayMs: 10,
    launchInfo: (path) =>
      path === binPath
        ? {
          args: ["deno", "run", "--no-config", "--allow-all"],
          externals: ["node:path"],
          module,
        }
        : undefined,
  });
  const children: Deno.ChildProcess[] = [];
  const spawn = (port: number, env: Record<string, string> = {}) => {
    const child = pool.spawn(binPath, {
      cwd: dir,
      clearEnv: true,
      env: { TQ_PORT: String(port), TQ_WORKER_NAME: "w", ...env },
      stdin: "piped",
      stdout: "null",
      stderr: "inherit",
      detached: true,
    });
    children.push(child);
    return child;
  };
  try {
    const first = spawn(freePort());
    assert.equal(first.spawnedAt, undefined, "no standby yet: a plain start");
    await waitFor(() => pool.size === 1, 10_000, "a standby");
    // Nothing outside the standby shows that it loaded its packages (a late
    // hand-over works too, the line waits on its stdin): a moment, so that
    // the usual case, a warm standby, is the one tested.
    await new Promise((r) => setTimeout(r, 300));
    const before = Date.now();
    const port = freePort();
    const second = spawn(port);
    assert.ok(second.spawnedAt! < before, "handed a process started earlier");
    const body = await answer(port);
    assert.equal(body.pid, second.pid);
    assert.equal(body.port, String(port));
    assert.equal(body.name, "w");
    assert.equal(body.preload, null, "the standby's own variable is gone");
    // A different environment cannot use the standby started for the old one.
    await waitFor(() => pool.size === 1, 10_000, "the next standby");
    const third = spawn(freePort(), { EXTRA: "1" });
    assert.equal(third.spawnedAt, undefined);
  } finally {
    await pool.close();
    for (const child of children) {
      killGroup(child.pid, "SIGKILL");
      await child.status;
      try {
        child.stdin.close();
      } catch {
        // Closed.
      }
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("StandbyPool stops the standby of a binary no worker runs any more at the next spawn", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tq-standby-" });
  const bins = [join(dir, "a"), join(dir, "b")];
  for (const bin of bins) {
    await Deno.writeTextFile(`${bin}.js`, WORKER);
    await Deno.writeTextFile(
      bin,
      `#!/bin/sh\nexec '${Deno.execPath()}' run --no-config --allow-all "$0.js"\n`,
      { mode: 0o755 },
    );
    await Deno.chmod(bin, 0o755);
  }
  const running = new Set(bins);
  const pool = new StandbyPool({
    delayMs: 10,
    wanted: (path) => running.has(path),
    launchInfo: (path) => ({
      args: ["deno", "run", "--no-config", "--allow-all"],
      externals: [],
      module: `${path}.js`,
    }),
  });
  const children: Deno.ChildProcess[] = [];
  const spawn = (bin: string) => {
    const child = pool.spawn(bin, {
      cwd: dir,
      clearEnv: true,
      env: { TQ_PORT: String(freePort()), TQ_WORKER_NAME: "w" },
      stdin: "piped",
      stdout: "null",
      stderr: "null",
      detached: true,
    });
    children.push(child);
    return child;
  };
  try {
    spawn(bins[0]!);
    await waitFor(() => pool.size === 1, 10_000, "a's standby");
    running.delete(bins[0]!); // worker a removed
    spawn(bins[1]!);
    assert.equal(pool.size, 0, "a's standby was kept after a was removed");
  } finally {
    await pool.close();
    for (const child of children) {
      killGroup(child.pid, "SIGKILL");
      await child.status;
      try {
        child.stdin.close();
      } catch {
        // Closed.
      }
    }
    await Deno.remove(dir, { recursive: true });
  }
});
