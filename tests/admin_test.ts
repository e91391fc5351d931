// End-to-end: the admin API, events and metrics against a real server, its
// log files and the access log.
import assert from "node:assert/strict";
import { join } from "node:path";
import { parsePrometheus } from "../src/metrics/_prom_parse.ts";
import { makeProject, startServer, waitFor } from "./_helpers.ts";

const JSON_POST = {
  method: "POST",
  headers: { "content-type": "application/json" },
};

interface EventJson {
  id: number;
  type: string;
  worker?: string;
  message: string;
  fields: Record<string, unknown>;
}

async function events(admin: string, since = 0): Promise<EventJson[]> {
  const res = await fetch(`${admin}/api/events?since=${since}`);
  assert.equal(res.status, 200);
  return (await res.json()).events;
}

Deno.test("status, events and metrics reflect a real replace, a real crash and a manual restart", async (t) => {
  const project = makeProject({
    workers: { index: {}, api: {} },
    serverYaml: "  default:\n    log_file: logs/{name}_{date}.log\n",
    deploymentYaml: "server:\n  log_file: logs/server_{date}.log\n",
  });
  const server = await startServer(project);
  const date = new Date().toISOString().slice(0, 10);
  const serverLog = () =>
    Deno.readTextFileSync(join(project.root, "logs", `server_${date}.log`));
  try {
    await t.step("status lists each worker with its instances", async () => {
      const status = await server.status();
      const api = status.workers.find((w) => w.name === "api")!;
      assert.equal(api.status, "healthy");
      const full = await (await fetch(`${server.admin}/api/status`)).json();
      const inst = full.workers.find((w: { name: string }) => w.name === "api")
        .instances;
      assert.equal(inst.length, 1);
      assert.equal(inst[0].pid, api.pid);
      assert.equal(inst[0].port, api.port);
      const started = (await events(server.admin)).filter((e) =>
        e.type === "start"
      );
      assert.deepEqual(started.map((e) => e.worker).sort(), ["api", "index"]);
    });

    await t.step(
      "a per-worker restart replaces it with reason manual, in status, events, metrics and the log file",
      async () => {
        const before = await server.status();
        const oldPid = before.workers.find((w) => w.name === "api")!.pid;
        const res = await fetch(
          `${server.admin}/api/workers/api/restart`,
          JSON_POST,
        );
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        assert.equal(body.ok, true);
        const after = (await server.status()).workers.find((w) =>
          w.name === "api"
        )!;
        assert.notEqual(after.pid, oldPid);
        assert.match(
          body.message,
          new RegExp(
            `^Restarted api in \\d+ ms: pid ${oldPid} → ${after.pid}\\.$`,
          ),
        );
        assert.equal(after.restarts, 1);
        assert.equal(after.last_restart_reason, "manual");
        const replaced = (await events(server.admin)).filter((e) =>
          e.type === "replace"
        );
        assert.equal(replaced.length, 1);
        assert.equal(replaced[0]!.worker, "api");
        assert.equal(replaced[0]!.fields.reason, "manual");
        assert.match(
          replaced[0]!.message,
          /^api replaced \(manual\) in \d+ ms/,
        );
        const metrics = parsePrometheus(
          await (await fetch(`${server.admin}/metrics`)).text(),
        );
        assert.equal(
          metrics.value("tqserver_worker_restarts_total", {
            worker: "api",
            reason: "manual",
          }),
          1,
        );
        assert.match(serverLog(), /worker replaced worker=api reason=manual/);
        const unknown = await fetch(
          `${server.admin}/api/workers/nope/restart`,
          JSON_POST,
        );
        assert.equal(unknown.status, 404);
        assert.equal(
          (await unknown.json()).message,
          `There is no worker "nope".`,
        );
      },
    );

    await t.step("a crash shows in events, metrics and status", async () => {
      const crashedPid = (await server.status()).workers.find((w) =>
        w.name === "index"
      )!.pid;
      await (await fetch(`${server.base}/crash`)).body?.cancel();
      const crash = await waitFor(
        async () =>
          (await events(server.admin)).find((e) => e.type === "crash"),
        10_000,
        "a crash event",
      );
      assert.equal(crash.worker, "index");
      assert.match(
        crash.message,
        new RegExp(
          `^index crashed \\(pid ${crashedPid}\\): Exited unexpectedly with code 3`,
        ),
      );
      const back = await waitFor(
        async () => {
          const w = (await server.status()).workers.find((w) =>
            w.name === "index"
          )!;
          return w.status === "healthy" && w.pid !== crashedPid ? w : undefined;
        },
        10_000,
        "index back after its crash",
      );
      assert.equal(back.last_restart_reason, "crashed");
      const metrics = parsePrometheus(
        await (await fetch(`${server.admin}/metrics`)).text(),
      );
      assert.equal(
        metrics.value("tqserver_worker_crashes_total", { worker: "index" }),
        1,
      );
      assert.equal(
        metrics.value("tqserver_worker_restarts_total", {
          worker: "index",
          reason: "crashed",
        }),
        1,
      );
    });

    await t.step(
      "a reload (binary replaced) is one event with its summary, and counted",
      async () => {
        const bin = join(project.root, "workers", "api", "bin", "api");
        const later = new Date(Date.now() + 5000);
        Deno.utimeSync(bin, later, later);
        const res = await fetch(`${server.admin}/api/reload`, JSON_POST);
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        assert.equal(
          body.message.replace(/\d+ ms/, "N ms"),
          "Checked 2 workers in N ms: 1 replaced (binary-changed).",
        );
        assert.equal(body.report.actions[0].worker, "api");
        const all = await events(server.admin);
        const check = all.filter((e) => e.type === "reload");
        assert.equal(check.length, 1, JSON.stringify(check));
        assert.match(
          check[0]!.message,
          /checked 2 workers in \d+ ms: 1 replaced \(binary-changed\)/,
        );
        assert.ok(
          all.some((e) =>
            e.type === "replace" && e.fields.reason === "binary-changed"
          ),
        );
        const metrics = parsePrometheus(
          await (await fetch(`${server.admin}/metrics`)).text(),
        );
        assert.equal(metrics.value("tqserver_reload_checks_total", {}), 1);
        assert.equal(
          metrics.value("tqserver_reload_check_duration_seconds_count", {}),
          1,
        );
        assert.match(
          serverLog(),
          /INFO {2}checked 2 workers in \d+ ms: 1 replaced \(binary-changed\)/,
        );
        // since= returns only what came after.
        const last = all.at(-1)!.id;
        assert.deepEqual(await events(server.admin, last), []);
        assert.equal(
          (await fetch(`${server.admin}/api/events?since=x`)).status,
          400,
        );
      },
    );

    await t.step(
      "a failed replace and a static file are counted; every declared metric has a sample",
      async () => {
        Deno.writeTextFileSync(
          join(project.root, "workers", "index", "public", "app.css"),
          "body{}".repeat(100),
        );
        for (let i = 0; i < 2; i++) {
          const css = await fetch(`${server.base}/static/index/app.css`);
          assert.equal(css.status, 200);
          await css.body?.cancel();
        }
        // A binary that exits at once: the replace fails, the old instance keeps serving.
        const bin = join(project.root, "workers", "api", "bin", "api");
        Deno.writeTextFileSync(bin, "#!/bin/sh\nexit 1\n", { mode: 0o755 });
        const res = await fetch(
          `${server.admin}/api/workers/api/restart`,
          JSON_POST,
        );
        const body = await res.json();
        assert.equal(res.status, 500);
        assert.match(
          body.message,
          /^Restart of api failed after \d+ ms: .*\. The old instance keeps serving\.$/,
        );
        const failed = (await events(server.admin)).filter((e) =>
          e.type === "replace-failed"
        );
        assert.equal(failed.at(-1)?.worker, "api");
        const text = await (await fetch(`${server.admin}/metrics`)).text();
        const metrics = parsePrometheus(text);
        assert.equal(
          metrics.value("tqserver_worker_start_failures_total", {
            worker: "api",
            reason: "manual",
          }),
          1,
        );
        assert.equal(
          metrics.value("tqserver_static_responses_total", { code: "200" }),
          2,
        );
        assert.ok(metrics.value("tqserver_static_bytes_total", {})! >= 600);
        assert.ok(
          metrics.value("tqserver_static_cache_hits_total", {})! +
              metrics.value("tqserver_static_cache_misses_total", {})! >= 2,
        );
        assert.ok(
          metrics.value("tqserver_http_requests_total", {
            worker: "index",
            code: "2xx",
          })! >= 1,
        );
        for (const [name, family] of metrics.families) {
          // A histogram without observations has no samples; ours all observed one here.
          assert.ok(
            family.samples.length > 0,
            `${name} has no sample:\n${text}`,
          );
        }
        assert.ok(
          metrics.families.size >= 18,
          `only ${metrics.families.size} metrics`,
        );
      },
    );

    await t.step("worker output goes to its own log file", async () => {
      await (await fetch(`${server.base}/api/say?text=hello-from-api`)).body
        ?.cancel();
      const file = join(project.root, "logs", `api_${date}.log`);
      await waitFor(
        () => Deno.readTextFileSync(file).includes("[api] hello-from-api"),
        5000,
        file,
      );
      assert.doesNotMatch(serverLog(), /hello-from-api/);
    });
  } finally {
    await server.stop();
    project.cleanup();
  }
});

Deno.test("/api/stream sends a status snapshot, then each event as it happens", async () => {
  const project = makeProject({ workers: { index: {} } });
  const server = await startServer(project);
  const abort = new AbortController();
  try {
    const res = await fetch(`${server.admin}/api/stream`, {
      signal: abort.signal,
    });
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const readUntil = async (re: RegExp, ms: number) => {
      const deadline = Date.now() + ms;
      while (!re.test(text)) {
        const left = deadline - Date.now();
        const fail = () => new Error(`No ${re} within ${ms} ms in:\n${text}`);
        if (left <= 0) throw fail();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const chunk = await Promise.race([
          reader.read(),
          new Promise<never>((_, reject) =>
            timer = setTimeout(() => reject(fail()), left)
          ),
        ]).finally(() => clearTimeout(timer));
        if (chunk.done) throw new Error("Stream ended");
        text += chunk.value;
      }
    };
    await readUntil(/event: status\ndata: \{"status":\{"mode":"prod"/, 5000);
    const restarted = fetch(
      `${server.admin}/api/workers/index/restart`,
      JSON_POST,
    );
    await readUntil(/"type":"restart-requested"/, 5000);
    await (await restarted).body?.cancel();
    await readUntil(
      /id: \d+\nevent: event\ndata: \{[^\n]*"type":"replace"[^\n]*"reason":"manual"/,
      1000,
    );
    // An open dashboard stream must not hold the shutdown for the drain timeout (30 s).
    const stopping = performance.now();
    const status = await server.stop();
    assert.equal(status.code, 0);
    assert.ok(
      performance.now() - stopping < 10_000,
      `stop took ${Math.round(performance.now() - stopping)} ms`,
    );
    await readUntil(/"message":"Server stopping \(SIGTERM\)"/, 1000);
  } finally {
    abort.abort();
    await server.stop();
    project.cleanup();
  }
});

Deno.test("POSTs from a web page are refused: foreign Origin 403, no JSON 415; a token guards everything when set", async (t) => {
  const project = makeProject({
    workers: { index: {} },
    deploymentYaml: "server:\n  admin:\n    token: s3cret\n",
  });
  const server = await startServer(project);
  const auth = { authorization: "Bearer s3cret" };
  try {
    await t.step("without the token: 401", async () => {
      const res = await fetch(`${server.admin}/api/status`);
      assert.equal(res.status, 401);
      assert.match(res.headers.get("www-authenticate") ?? "", /Bearer/);
      await res.body?.cancel();
      const post = await fetch(`${server.admin}/api/reload`, JSON_POST);
      assert.equal(post.status, 401);
      await post.body?.cancel();
    });
    await t.step(
      "a cross-site POST is refused even with the token",
      async () => {
        const res = await fetch(`${server.admin}/api/reload`, {
          method: "POST",
          headers: { ...auth, origin: "https://evil.example" },
        });
        assert.equal(res.status, 403);
        assert.match((await res.json()).message, /Cross-site request refused/);
      },
    );
    await t.step("with the token: 200", async () => {
      const res = await fetch(`${server.admin}/api/reload`, {
        method: "POST",
        headers: auth,
      });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).ok, true);
      const status = await fetch(`${server.admin}/metrics`, { headers: auth });
      assert.equal(status.status, 200);
      await status.body?.cancel();
    });
  } finally {
    await server.stop();
    project.cleanup();
  }
});

Deno.test("without a token, a POST needs JSON and a same-origin Origin", async () => {
  const project = makeProject({ workers: { index: {} } });
  const server = await startServer(project);
  try {
    const form = await fetch(`${server.admin}/api/workers/index/restart`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "a=1",
    });
    assert.equal(form.status, 415);
    await form.body?.cancel();
    const foreign = await fetch(`${server.admin}/api/workers/index/restart`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        origin: "http://attacker.test",
      },
    });
    assert.equal(foreign.status, 403);
    await foreign.body?.cancel();
    const site = await fetch(`${server.admin}/api/reload`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "sec-fetch-site": "cross-site",
      },
    });
    assert.equal(site.status, 403);
    await site.body?.cancel();
    assert.equal((await server.status()).workers[0]!.restarts, 0);
    const same = await fetch(`${server.admin}/api/workers/index/restart`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        origin: server.admin,
      },
    });
    assert.equal(same.status, 200);
    await same.body?.cancel();
    assert.equal((await server.status()).workers[0]!.restarts, 1);
  } finally {
    await server.stop();
    project.cleanup();
  }
});

Deno.test("an admin listener on a non-loopback address without a token exits 2", async () => {
  const project = makeProject({
    workers: { index: {} },
    deploymentYaml: "server:\n  admin:\n    host: 0.0.0.0\n",
  });
  try {
    const server = await startServer(project, ["--mode", "prod"], {
      waitReady: false,
    });
    const exited = await server.process.status;
    await server.stop(); // drains its output
    assert.equal(exited.code, 2);
    assert.match(
      server.logs(),
      /deployment\.yaml:3: "server\.admin\.host": expected a loopback address .* unless "server\.admin\.token" is set, got "0\.0\.0\.0"/,
    );
    assert.doesNotMatch(server.logs(), /worker started/);
  } finally {
    project.cleanup();
  }
});

Deno.test("SIGUSR1 reopens a log file that was moved away; the access log has one line per request", async () => {
  const project = makeProject({
    workers: { index: {} },
    deploymentYaml:
      "server:\n  log_file: logs/server.log\n  access_log: logs/access_{date}.log\n  access_log_format: json\n",
  });
  const server = await startServer(project);
  const logs = join(project.root, "logs");
  try {
    const paths = ["/a", "/b?x=1", "/missing/deeper"];
    const sizes: number[] = [];
    for (const p of paths) {
      const res = await fetch(`${server.base}${p}`, {
        headers: { "user-agent": "tq-test" },
      });
      const body = await res.bytes();
      // Logged with its length, not re-sent chunked to be counted.
      assert.equal(res.headers.get("content-length"), String(body.length), p);
      sizes.push(body.length);
    }
    const date = new Date().toISOString().slice(0, 10);
    const lines = Deno.readTextFileSync(join(logs, `access_${date}.log`))
      .trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.path), paths);
    assert.deepEqual(lines.map((l) => l.bytes), sizes);
    for (const l of lines) {
      assert.equal(l.method, "GET");
      assert.equal(l.worker, "index");
      assert.equal(l.status, 200);
      assert.equal(l.client, "127.0.0.1");
      assert.equal(l.user_agent, "tq-test");
      assert.ok(l.bytes > 0);
      assert.equal(typeof l.duration_ms, "number");
      assert.match(l.request_id, /^[0-9a-f-]{36}$/);
    }

    Deno.renameSync(join(logs, "server.log"), join(logs, "server.log.1"));
    Deno.kill(server.process.pid, "SIGUSR1");
    await server.waitForLog("log files reopened");
    await waitFor(
      () =>
        Deno.readTextFileSync(join(logs, "server.log")).includes(
          "log files reopened",
        ),
      5000,
      "the new server.log",
    );
    assert.match(
      Deno.readTextFileSync(join(logs, "server.log.1")),
      /tqserver ready/,
    );
    assert.doesNotMatch(
      Deno.readTextFileSync(join(logs, "server.log")),
      /tqserver ready/,
    );
  } finally {
    await server.stop();
    project.cleanup();
  }
});

Deno.test("dev: a build error is a timeline event with file and line, and is counted", async () => {
  const project = makeProject({
    workers: {},
    deploymentYaml:
      "deployment:\n  dev:\n    file_watcher:\n      debounce_ms: 40\n",
  });
  const src = join(project.root, "workers", "app", "src");
  Deno.mkdirSync(src, { recursive: true });
  Deno.mkdirSync(join(project.root, "workers", "app", "public"));
  const source = (body: string) =>
    `const server = Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("TQ_PORT")), onListen() {} }, () => new Response(${body}));
Deno.addSignalListener("SIGTERM", () => server.shutdown());
(async () => { for await (const _ of Deno.stdin.readable) { /* never written */ } Deno.exit(0); })();
`;
  Deno.writeTextFileSync(join(src, "main.ts"), source('"v1"'));
  const server = await startServer(project, ["--mode", "dev"]);
  try {
    const progress = await waitFor(
      async () =>
        (await events(server.admin)).find((e) =>
          e.type === "build" && e.worker === "app"
        ),
      10_000,
      "the startup build event",
    );
    assert.match(progress.message, /^app built in \d+ ms$/);
    assert.match(server.logs(), /INFO {2}\[1\/1\] app \d+ ms worker=app/);
    Deno.writeTextFileSync(join(src, "main.ts"), source('"v2" + + ;'));
    const error = await waitFor(
      async () =>
        (await events(server.admin)).find((e) => e.type === "build-error"),
      15_000,
      "a build-error event",
    );
    assert.equal(error.worker, "app");
    assert.match(
      error.message,
      /^app build failed: .*workers\/app\/src\/main\.ts:\d+: /,
    );
    const metrics = parsePrometheus(
      await (await fetch(`${server.admin}/metrics`)).text(),
    );
    assert.equal(
      metrics.value("tqserver_build_errors_total", { worker: "app" }),
      1,
    );
  } finally {
    await server.stop();
    project.cleanup();
  }
});
