// End-to-end: a real tqserver process (from source) in prod mode with real worker processes.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  alive,
  makeProject,
  rawRequest,
  REPO,
  startServer,
  waitFor,
} from "./_helpers.ts";

Deno.test("tqserver routes, proxies and serves static files end to end", async (t) => {
  const project = makeProject({
    workers: {
      index: { TAG: "index" },
      api: { TAG: "api" },
      api_users: { TAG: "users" },
    },
    serverYaml: "  default:\n    env:\n      EXTRA: from-default\n",
  });
  // A foreign process holds the first pool port: it must be skipped.
  const foreign = Deno.listen({
    hostname: "127.0.0.1",
    port: project.poolStart,
  });
  Deno.writeTextFileSync(
    join(project.root, "workers/index/public/hello.txt"),
    "hello static\n",
  );
  Deno.writeTextFileSync(
    join(project.root, "workers/index/private/secret.txt"),
    "TOP-SECRET\n",
  );
  const server = await startServer(project);
  try {
    await t.step("longest prefix wins on segment boundaries", async () => {
      const cases: [string, string][] = [
        ["/", "index"],
        ["/api", "api"],
        ["/api/x", "api"],
        ["/apix", "index"],
        ["/api/users", "users"],
        ["/api/users/7", "users"],
        ["/api/usersx", "api"],
      ];
      for (const [path, tag] of cases) {
        const body = await (await fetch(server.base + path)).json();
        assert.equal(body.tag, tag, `route of ${path}`);
      }
    });

    await t.step(
      "the worker gets the path and query unchanged and the contract env",
      async () => {
        const body = await (await fetch(
          `${server.base}/api/users/a%2Fb/c?x=1&y=%20z#frag`,
        )).json();
        assert.equal(body.rawPath, "/api/users/a%2Fb/c?x=1&y=%20z");
        assert.equal(body.env.name, "api_users");
        assert.equal(body.env.route, "/api/users");
        assert.equal(body.env.mode, "prod");
        assert.equal(body.env.base, join(project.root, "workers", "api_users"));
        assert.equal(body.env.extra, "from-default");
      },
    );

    await t.step("a foreign listener on a pool port is skipped", async () => {
      const status = await server.status();
      for (const w of status.workers) {
        assert.equal(w.status, "healthy", w.name);
        assert.notEqual(w.port, project.poolStart);
      }
    });

    await t.step("a 5 MiB POST body arrives intact", async () => {
      const data = new Uint8Array(5 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 4096) {
        crypto.getRandomValues(data.subarray(i, i + 4096));
      }
      const digest = await crypto.subtle.digest("SHA-256", data);
      const hex = [...new Uint8Array(digest)].map((b) =>
        b.toString(16).padStart(2, "0")
      ).join("");
      const body = await (await fetch(`${server.base}/api/upload`, {
        method: "POST",
        body: data,
      })).json();
      assert.equal(body.bodyLength, data.length);
      assert.equal(body.bodySha256, hex);
    });

    await t.step(
      "forwarding headers are set, Host is kept, hop-by-hop headers are dropped",
      async () => {
        const raw = await rawRequest(
          server.port,
          "GET /api/h HTTP/1.1\r\nHost: example.test\r\nConnection: close, x-secret-hop\r\n" +
            "X-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 10.1.1.1\r\n\r\n",
        );
        const text = new TextDecoder().decode(raw);
        const json = JSON.parse(
          text.slice(text.indexOf("\r\n\r\n") + 4).replace(
            /^[0-9a-f]+\r\n/,
            "",
          ),
        );
        const h = json.headers;
        assert.equal(h.host, "example.test");
        assert.equal(h["x-forwarded-host"], "example.test");
        assert.equal(h["x-forwarded-proto"], "http");
        assert.match(h["x-forwarded-for"], /127\.0\.0\.1$/);
        assert.ok(h["x-request-id"]);
        assert.equal(h["x-secret-hop"], undefined);
        assert.equal(h["keep-alive"], undefined);
      },
    );

    await t.step(
      "gzip, multiple Set-Cookie and redirects pass through unchanged",
      async () => {
        const gz = await fetch(`${server.base}/api/gzip`);
        assert.equal(await gz.text(), "compressed hello ".repeat(200));
        const cookies = await fetch(`${server.base}/api/cookies`);
        await cookies.body?.cancel();
        assert.deepEqual(cookies.headers.getSetCookie(), [
          "a=1; Path=/",
          "b=2; Path=/; HttpOnly",
        ]);
        const redirect = await fetch(`${server.base}/api/redirect`, {
          redirect: "manual",
        });
        await redirect.body?.cancel();
        assert.equal(redirect.status, 302);
        assert.equal(redirect.headers.get("location"), "/elsewhere");
      },
    );

    await t.step(
      "a WebSocket is proxied to the worker of its route",
      async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api/users/ws`);
        const reply = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error("No WebSocket reply in 5 s")),
            5000,
          );
          ws.onopen = () => ws.send("hello");
          ws.onmessage = (e) => {
            clearTimeout(timer);
            resolve(String(e.data));
          };
          ws.onerror = () => {
            clearTimeout(timer);
            reject(new Error("WebSocket failed"));
          };
        });
        assert.equal(reply, "users: hello");
        const closed = new Promise((resolve) => ws.onclose = resolve);
        ws.close();
        await closed;
      },
    );

    await t.step("static files are served and private/ never is", async () => {
      const ok = await fetch(`${server.base}/static/index/hello.txt`);
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), "hello static\n");
      for (
        const path of [
          "/static/index/../private/secret.txt",
          "/static/index/%2e%2e/private/secret.txt",
        ]
      ) {
        const raw = new TextDecoder().decode(
          await rawRequest(
            server.port,
            `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          ),
        );
        assert.match(raw, /^HTTP\/1\.1 40[04]/, path);
        assert.ok(!raw.includes("TOP-SECRET"), path);
      }
    });

    await t.step("reserved /_tq/ answers 404 in prod", async () => {
      const res = await fetch(`${server.base}/_tq/events`);
      await res.body?.cancel();
      assert.equal(res.status, 404);
    });

    await t.step(
      "a killed worker comes back; meanwhile a GET waits for it or gets 503 with Retry-After, never 502",
      async () => {
        const before = (await server.status()).workers.find((w) =>
          w.name === "api"
        )!;
        Deno.kill(before.pid!, "SIGKILL");
        const started = Date.now();
        // waitFor retries on exceptions, so problems are collected and asserted after it.
        const problems: string[] = [];
        await waitFor(
          async () => {
            const t0 = Date.now();
            const res = await fetch(`${server.base}/api/x`);
            await res.body?.cancel();
            const ms = Date.now() - t0;
            // A GET waits for the replacement (retry_window_ms, 3 s) rather than failing.
            if (ms >= 4000) problems.push(`an answer took ${ms} ms`);
            if (res.status === 503) {
              // While no instance serves: 503 with a Retry-After of whole seconds.
              const retry = res.headers.get("retry-after");
              if (!retry || !/^[1-9]\d*$/.test(retry)) {
                problems.push(`503 with Retry-After ${retry}`);
              }
            } else if (res.status !== 200) {
              // 502 would mean a request failed because of the crash.
              problems.push(`status ${res.status}`);
            }
            const w = (await server.status()).workers.find((w) =>
              w.name === "api"
            )!;
            return res.status === 200 && w.pid !== before.pid;
          },
          10000,
          "the worker to come back",
        );
        assert.deepEqual(problems, []);
        const after = (await server.status()).workers.find((w) =>
          w.name === "api"
        )!;
        assert.equal(after.status, "healthy");
        assert.equal(after.last_restart_reason, "crashed");
        assert.ok(after.restarts >= 1);
        // The first retry comes 100 ms after the crash: back well before the wait's 10 s.
        const back = Date.now() - started;
        assert.ok(back < 5000, `the worker came back after ${back} ms`);
      },
    );

    await t.step(
      "SIGTERM stops the server with code 0 and leaves no worker process",
      async () => {
        const pids = (await server.status()).workers.map((w) => w.pid!);
        assert.equal(pids.length, 3);
        const status = await server.stop();
        assert.equal(status.code, 0);
        for (const pid of pids) {
          assert.equal(alive(pid), false, `worker ${pid} still alive`);
        }
      },
    );
  } finally {
    foreign.close();
    await server.stop();
    project.cleanup();
  }
});

Deno.test("workers exit by themselves within 2 s when the server is SIGKILLed", async () => {
  const project = makeProject({ workers: { index: {}, other: {} } });
  const server = await startServer(project);
  try {
    const pids = (await server.status()).workers.map((w) => w.pid!);
    assert.equal(pids.length, 2);
    server.process.kill("SIGKILL");
    await server.process.status;
    await waitFor(
      () => pids.every((pid) => !alive(pid)),
      2000,
      "workers to exit after stdin EOF",
    );
    // The next start finds no stale worker holding a port.
    const next = await startServer(project);
    const status = await next.status();
    assert.ok(status.workers.every((w) => w.status === "healthy"));
    assert.equal((await next.stop()).code, 0);
  } finally {
    await server.stop();
    project.cleanup();
  }
});

Deno.test("a bad config exits with code 2 naming the file, line and key", async () => {
  const project = makeProject({
    serverYaml: "  default:\n    startup_timeout_ms: soon\n",
  });
  const server = await startServer(project, ["--mode", "prod"], {
    waitReady: false,
  });
  try {
    const status = await server.process.status;
    assert.equal(status.code, 2);
    await server.stop();
    assert.match(server.logs(), /config\/server\.yaml:\d+/);
    assert.match(server.logs(), /startup_timeout_ms/);
  } finally {
    project.cleanup();
  }
});

Deno.test("bad usage exits with code 2 and --version/--help exit 0", async () => {
  const run = async (args: string[], env: Record<string, string> = {}) =>
    await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../main.ts", import.meta.url).pathname,
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
      env,
    }).output();
  const bad = await run(["--mode", "staging"]);
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /--mode "staging"/);
  // Found only once the config is read (the mode may come from it).
  const project = makeProject({ workers: {} });
  try {
    const env = await run(["--root", project.root], {
      DEPLOYMENT_MODE: "staging",
    });
    const err = new TextDecoder().decode(env.stderr);
    assert.equal(env.code, 2, err);
    assert.match(err, /Invalid DEPLOYMENT_MODE "staging"/);
  } finally {
    project.cleanup();
  }
  const version = await run(["--version"]);
  assert.equal(version.code, 0);
  assert.match(
    new TextDecoder().decode(version.stdout),
    /^tqserver \d+\.\d+\.\d+/,
  );
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /--root DIR/);
});

Deno.test("a worker that cannot start answers 503 with Retry-After and shows why in status", async () => {
  const project = makeProject({ workers: { index: {} } });
  const bin = join(project.root, "workers", "broken", "bin", "broken");
  Deno.mkdirSync(join(project.root, "workers", "broken", "bin"), {
    recursive: true,
  });
  Deno.writeTextFileSync(
    bin,
    "#!/bin/sh\necho 'cannot start: missing DATABASE_URL' >&2\nexit 1\n",
    { mode: 0o755 },
  );
  const server = await startServer(project);
  try {
    const res = await fetch(`${server.base}/broken/x`, {
      headers: { accept: "application/json" },
    });
    assert.equal(res.status, 503);
    assert.ok(Number(res.headers.get("retry-after")) >= 1);
    const body = await res.json();
    assert.equal(body.status, 503);
    const html = await fetch(`${server.base}/broken/x`, {
      headers: { accept: "text/html" },
    });
    assert.match(html.headers.get("content-type") ?? "", /text\/html/);
    await html.body?.cancel();
    const broken = (await server.status()).workers.find((w) =>
      w.name === "broken"
    )!;
    assert.equal(broken.status, "crashed");
    assert.match(broken.last_error ?? "", /code 1/);
    assert.match(
      server.logs(),
      /\[broken\] cannot start: missing DATABASE_URL/,
    );
    // The others serve.
    const ok = await fetch(`${server.base}/`);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  } finally {
    await server.stop();
    project.cleanup();
  }
});

Deno.test("the admin listener serves the dashboard, metrics, and rejects wrong methods", async () => {
  const project = makeProject({
    workers: { index: {} },
    deploymentYaml: "server:\n  log_file: logs/tq_{date}.log\n",
  });
  const admin = join(project.root, "server", "public", "admin");
  Deno.mkdirSync(admin, { recursive: true });
  for (const file of ["index.html", "admin.js", "admin.css"]) {
    Deno.copyFileSync(
      join(REPO, "server", "public", "admin", file),
      join(admin, file),
    );
  }
  const server = await startServer(project, ["--mode", "prod"]);
  try {
    const dashboard = await fetch(`${server.admin}/`);
    assert.match(dashboard.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await dashboard.text(), /<title>tqserver admin<\/title>/);
    const script = await fetch(`${server.admin}/admin.js`);
    assert.match(await script.text(), /\/api\/status/);
    const escape = await fetch(
      `${server.admin}/..%2f..%2fconfig%2fserver.yaml`,
    );
    assert.equal(escape.status, 404);
    await escape.body?.cancel();
    const date = new Date().toISOString().slice(0, 10);
    assert.match(
      Deno.readTextFileSync(join(project.root, "logs", `tq_${date}.log`)),
      /tqserver ready/,
    );
    await (await fetch(`${server.base}/a`)).body?.cancel();
    const metrics = await (await fetch(`${server.admin}/metrics`)).text();
    assert.match(
      metrics,
      /tqserver_http_requests_total\{worker="index",code="2xx"\} 1/,
    );
    assert.match(metrics, /tqserver_worker_up\{worker="index"\} 1/);
    const reload = await fetch(`${server.admin}/api/reload`);
    assert.equal(reload.status, 405);
    await reload.body?.cancel();
    const status = await server.status();
    assert.equal(status.mode, "prod");
    assert.equal(status.port, server.port);
    assert.equal(typeof status.pid, "number");
  } finally {
    await server.stop();
    project.cleanup();
  }
});

Deno.test("a public port in use exits with code 1, says so, and leaves no worker behind", async () => {
  const project = makeProject({ workers: { index: {} } });
  const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (holder.addr as Deno.NetAddr).port;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../main.ts", import.meta.url).pathname,
        "--root",
        project.root,
        "--port",
        String(port),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1);
    assert.match(
      new TextDecoder().decode(out.stderr),
      // The flag that set it, not server.port: the config was not at fault.
      new RegExp(
        `Port ${port} on "127\\.0\\.0\\.1" \\(--port\\) is already in use`,
      ),
    );
    assert.doesNotMatch(new TextDecoder().decode(out.stderr), /worker started/);
  } finally {
    holder.close();
    project.cleanup();
  }
});

Deno.test("resources.worker_max_memory_mb reaches a worker as DENO_V8_FLAGS, with a startup warning for a prebuilt one", async () => {
  const project = makeProject({
    workers: { index: {} },
    deploymentYaml:
      "deployment:\n  prod:\n    resources:\n      worker_max_memory_mb: 96\n",
  });
  const server = await startServer(project);
  try {
    assert.match(
      server.logs(),
      /WARN {2}worker warning .*deployment\.prod\.resources\.worker_max_memory_mb.* reaches worker .*index.* as DENO_V8_FLAGS, which only a Deno program reads/,
    );
    // The echo worker answers with its environment.
    const echo = await (await fetch(`${server.base}/x`)).json();
    assert.equal(echo.env.v8flags, "--max-old-space-size=96");
  } finally {
    await server.stop();
    project.cleanup();
  }
});
