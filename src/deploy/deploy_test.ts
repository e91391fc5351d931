import assert from "node:assert/strict";
import { join } from "node:path";
import type { WorkerSpec } from "../config/mod.ts";
import { defaultWorkerSettings } from "../config/mod.ts";
import { deploy, type RunFn } from "./deploy.ts";

function project(): { root: string; worker: WorkerSpec } {
  const root = Deno.makeTempDirSync({ prefix: "tq-deploy-unit-" });
  const dir = join(root, "workers", "index");
  Deno.mkdirSync(join(dir, "bin"), { recursive: true });
  Deno.writeTextFileSync(join(dir, "bin", "index"), "#!/bin/sh\n", {
    mode: 0o755,
  });
  const worker: WorkerSpec = {
    name: "index",
    dir,
    route: "/",
    kind: "binary",
    entry: undefined,
    binPath: join(dir, "bin", "index"),
    settings: defaultWorkerSettings(),
  };
  return { root, worker };
}

function recorder(reloadReport: unknown): { run: RunFn; calls: string[][] } {
  const calls: string[][] = [];
  const run: RunFn = (cmd) => {
    calls.push(cmd);
    const last = cmd[cmd.length - 1] ?? "";
    if (cmd[0] === "ssh" && last.includes("/api/reload")) {
      return Promise.resolve({
        code: 0,
        output: JSON.stringify({ ok: true, report: reloadReport }) + "\n200",
      });
    }
    if (cmd[0] === "ssh" && last.includes("/api/status")) {
      return Promise.resolve({
        code: 0,
        output: JSON.stringify({
          workers: [{ name: "index", status: "healthy" }],
        }) + "\n200",
      });
    }
    return Promise.resolve({ code: 0, output: "" });
  };
  return { run, calls };
}

const target = {
  hosts: ["deploy@web1", "deploy@web2"],
  path: "/opt/app",
  ssh_options: "-p 2222",
  admin_url: "http://127.0.0.1:8081",
};

Deno.test("deploy() ships to each host in turn and reloads it through its own admin API", async () => {
  const { root, worker } = project();
  const { run, calls } = recorder({
    actions: [{ worker: "index", action: "replaced" }],
  });
  try {
    const reports = await deploy({
      root,
      name: "production",
      target,
      workers: [worker],
      onlyWorkers: true,
      reload: true,
      run,
    });
    assert.deepEqual(reports.map((r) => [r.host, r.workers, r.reloaded]), [
      ["deploy@web1", ["index"], true],
      ["deploy@web2", ["index"], true],
    ]);
    const hostOf = (cmd: string[]) =>
      cmd.find((a) => a.includes("web1"))
        ? 1
        : cmd.find((a) => a.includes("web2"))
        ? 2
        : 0;
    const order = calls.map(hostOf).filter((h) => h > 0);
    assert.deepEqual(
      order,
      [...order].sort(),
      "web2 was touched before web1 was done",
    );
    const rsyncBin = calls.find((c) =>
      c[0] === "rsync" && c.includes("--backup")
    )!;
    assert.ok(rsyncBin.includes("--checksum"));
    assert.equal(
      rsyncBin[rsyncBin.length - 1],
      "deploy@web1:/opt/app/workers/index/bin/",
    );
    assert.deepEqual(
      rsyncBin.slice(rsyncBin.indexOf("-e"), rsyncBin.indexOf("-e") + 2),
      ["-e", "ssh -o BatchMode=yes -o ConnectTimeout=10 -p 2222"],
    );
    const reload = calls.find((c) =>
      c[0] === "ssh" && c.at(-1)!.includes("/api/reload")
    )!;
    assert.deepEqual(reload.slice(0, 8), [
      "ssh",
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=10",
      "-p",
      "2222",
      "deploy@web1",
    ]);
    assert.match(
      reload.at(-1)!,
      /curl .* -X POST -H 'Content-Type: application\/json' http:\/\/127\.0\.0\.1:8081\/api\/reload/,
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("deploy() stops at the first host whose reload fails, leaving the next host alone", async () => {
  const { root, worker } = project();
  const { run, calls } = recorder({
    actions: [{
      worker: "index",
      action: "failed",
      error: "exec format error",
    }],
  });
  try {
    await assert.rejects(
      deploy({
        root,
        name: "production",
        target,
        workers: [worker],
        onlyWorkers: true,
        reload: true,
        run,
      }),
      /Reload on "deploy@web1" failed: index: exec format error/,
    );
    assert.ok(!calls.some((c) => c.some((a) => a.includes("web2"))));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("deploy() skips a worker without a binary with a warning instead of aborting", async () => {
  const { root, worker } = project();
  Deno.removeSync(worker.binPath);
  const { run, calls } = recorder({ actions: [] });
  try {
    const [report] = await deploy({
      root,
      name: "share",
      target: { hosts: [], path: "/mnt/app", ssh_options: "", admin_url: "" },
      workers: [worker],
      onlyWorkers: true,
      run,
    });
    assert.deepEqual(report!.skipped, ["index"]);
    assert.equal(calls.filter((c) => c[0] === "rsync").length, 0);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("deploy() ships and rolls back the binary at its binaries.path, outside the worker folder too", async () => {
  const { root, worker } = project();
  Deno.mkdirSync(join(root, "build"));
  const binPath = join(root, "build", "index.exe");
  Deno.writeTextFileSync(binPath, "#!/bin/sh\n", { mode: 0o755 });
  const moved = { ...worker, binPath };
  const { run, calls } = recorder({});
  try {
    await deploy({
      root,
      name: "production",
      target: { ...target, hosts: ["deploy@web1"] },
      workers: [moved],
      onlyWorkers: true,
      run,
    });
    const rsyncs = calls.filter((c) => c[0] === "rsync");
    const binary = rsyncs.find((c) => c.includes(binPath))!;
    assert.equal(binary.at(-1), "deploy@web1:/opt/app/build/");
    assert.ok(binary.includes("--suffix=.prev"));
    const mkdir = calls.find((c) => c.at(-1)?.startsWith("mkdir -p"))!;
    assert.match(
      mkdir.at(-1)!,
      /\/opt\/app\/workers\/index \/opt\/app\/build$/,
    );
    calls.length = 0;
    await deploy({
      root,
      name: "production",
      target: { ...target, hosts: ["deploy@web1"] },
      workers: [moved],
      onlyWorkers: true,
      rollback: true,
      run,
    });
    assert.match(calls[0]!.at(-1)!, /\/opt\/app\/build\/index\.exe\.prev/);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("deploy() --reload sends server.admin.token to a token-protected admin, and a 401 fails the deploy", async (t) => {
  const { root, worker } = project();
  const { run } = recorder({});
  const seen: string[] = [];
  // A real listener with the admin's rule: no Bearer token, no answer.
  const admin = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    (req) => {
      const path = new URL(req.url).pathname;
      seen.push(`${req.method} ${path}`);
      if (req.headers.get("authorization") !== "Bearer s3cret") {
        return Response.json({ error: "Missing or wrong Bearer token" }, {
          status: 401,
        });
      }
      return path === "/api/reload"
        ? Response.json({ ok: true, report: { actions: [] } })
        : Response.json({ workers: [{ name: "index", status: "healthy" }] });
    },
  );
  const local = {
    hosts: [],
    path: join(root, "target"),
    ssh_options: "",
    admin_url: `http://127.0.0.1:${admin.addr.port}`,
  };
  try {
    await t.step("with the token: reloaded, status checked", async () => {
      const [report] = await deploy({
        root,
        name: "local",
        target: local,
        workers: [worker],
        onlyWorkers: true,
        reload: true,
        adminToken: "s3cret",
        run,
      });
      assert.equal(report!.reloaded, true);
      assert.deepEqual(seen, ["POST /api/reload", "GET /api/status"]);
    });
    await t.step("without it: the 401 and its reason, no SIGHUP", async () => {
      const { run, calls } = recorder({});
      await assert.rejects(
        deploy({
          root,
          name: "local",
          target: local,
          workers: [worker],
          onlyWorkers: true,
          reload: true,
          run,
        }),
        /Reload on ".*" failed: status 401 \(Missing or wrong Bearer token\)/,
      );
      assert.ok(!calls.some((c) => c.at(-1)!.includes("killall")));
    });
  } finally {
    await admin.shutdown();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("deploy() over ssh sends the token to curl and reports the admin's status code", async () => {
  const { root, worker } = project();
  const calls: string[][] = [];
  const run: RunFn = (cmd) => {
    calls.push(cmd);
    if (cmd[0] === "ssh" && cmd.at(-1)!.includes("curl")) {
      // What curl -w '\n%{http_code}' prints for a refused call.
      return Promise.resolve({
        code: 0,
        output: '{"error":"Missing or wrong Bearer token"}\n401',
      });
    }
    return Promise.resolve({ code: 0, output: "" });
  };
  try {
    await assert.rejects(
      deploy({
        root,
        name: "production",
        target: { ...target, hosts: ["deploy@web1"] },
        workers: [worker],
        onlyWorkers: true,
        reload: true,
        adminToken: "it's",
        run,
      }),
      /status 401 \(Missing or wrong Bearer token\)/,
    );
    const curl = calls.find((c) => c.at(-1)!.includes("curl"))!.at(-1)!;
    assert.match(curl, /-H 'Authorization: Bearer it'"'"'s'/);
    assert.match(curl, /-w '\\n%\{http_code\}'/);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("deploy() fails when the host rejected the deployed config (the old one keeps running)", async () => {
  const { root, worker } = project();
  const { run, calls } = recorder({
    config: "rejected",
    config_error: "config/server.yaml:3 server.port: expected a port",
    actions: [],
  });
  try {
    await assert.rejects(
      deploy({
        root,
        name: "production",
        target,
        workers: [worker],
        reload: true,
        run,
      }),
      /Reload on "deploy@web1" failed: config rejected: config\/server\.yaml:3 server\.port: expected a port/,
    );
    assert.ok(!calls.some((c) => c.some((a) => a.includes("web2"))));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
