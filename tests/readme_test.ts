// The README is for users: its worker snippets (TypeScript, Python, Go) run as
// copied, each stopping cleanly on SIGTERM and on stdin's EOF, and the text
// keeps to what a user needs (no issue numbers, no documents that are not here,
// every task listed).
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  alive,
  copyServer,
  freePort,
  freePortRange,
  REPO,
  startServer,
  waitFor,
} from "./_helpers.ts";

const README = Deno.readTextFileSync(join(REPO, "README.md"));

/** The README's code blocks that name a file under workers/, by path. */
function snippetFiles(readme: string): Map<string, string> {
  const files = new Map<string, string>();
  const block =
    /(?:`(workers\/[^`]+)`[^\n]*\n\s*\n)?( *)```(ts|html|python|go)\n([\s\S]*?)\n\s*```/g;
  for (const m of readme.matchAll(block)) {
    const indent = m[2]!.length;
    const body = m[4]!.split("\n").map((l) => l.slice(indent)).join("\n");
    const path = /^\/\/ (workers\/\S+)/.exec(body)?.[1] ?? m[1];
    if (path && !path.endsWith("/")) files.set(path, body + "\n");
  }
  return files;
}

const hasGo = (() => {
  try {
    return new Deno.Command("go", { args: ["version"] }).outputSync().success;
  } catch {
    return false;
  }
})();

/** Runs a worker executable as tqserver would, then closes its stdin: it must exit 0 on its own. */
async function exitsOnStdinEof(path: string, cwd: string): Promise<void> {
  const port = freePort();
  const child = new Deno.Command(path, {
    cwd,
    env: { TQ_PORT: String(port), PORT: String(port) },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  try {
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok,
      10_000,
      `${path} healthy`,
    );
    await child.stdin.close();
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    const out = await output;
    clearTimeout(timer);
    assert.equal(out.signal, null, `${path} died of ${out.signal}`);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stderr), "");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited.
    }
  }
}

Deno.test("the README's worker snippets (TypeScript, Python, Go) serve as copied, and stop cleanly on SIGTERM and on stdin's EOF", async (t) => {
  const files = snippetFiles(README);
  const expected = [
    "workers/first_go/src/main.go",
    "workers/hello/private/templates/base.html",
    "workers/hello/private/views/home.html",
    "workers/hello/src/main.ts",
    "workers/hello_py/bin/hello_py",
  ];
  assert.deepEqual([...files.keys()].sort(), expected);
  assert.equal(
    files.get("workers/hello_py/bin/hello_py"),
    Deno.readTextFileSync(join(REPO, "workers/hello_py/bin/hello_py")),
    "the README's Python worker and workers/hello_py/bin/hello_py differ",
  );
  const root = copyServer();
  for (const [path, text] of files) {
    if (path.endsWith(".go") && !hasGo) continue;
    Deno.mkdirSync(dirname(join(root, path)), { recursive: true });
    Deno.writeTextFileSync(join(root, path), text, { mode: 0o755 });
  }
  Deno.chmodSync(join(root, "workers/hello_py/bin/hello_py"), 0o755);
  const adminPort = freePort();
  const poolStart = freePortRange(20);
  Deno.mkdirSync(join(root, "config"));
  Deno.writeTextFileSync(
    join(root, "config", "server.yaml"),
    `server:\n  admin:\n    port: ${adminPort}\nworkers:\n  port_range_start: ${poolStart}\n  port_range_end: ${
      poolStart + 19
    }\n`,
  );
  const server = await startServer(
    { root, adminPort, poolStart, cleanup: () => {} },
    ["--mode", "dev"],
    { main: join(root, "main.ts"), waitReady: false },
  );
  const pids: number[] = [];
  try {
    // A cold `go build` of the Go snippet can take a while.
    await server.waitForLog("tqserver ready", 180_000);
    const get = async (path: string) => {
      const res = await fetch(`${server.base}${path}`);
      return { status: res.status, text: await res.text() };
    };

    await t.step(
      "TypeScript: the SDK snippet renders its view in its layout",
      async () => {
        const page = await waitFor(
          async () => {
            const r = await get("/hello");
            return r.status === 200 ? r.text : undefined;
          },
          15_000,
          "the hello page",
        );
        assert.match(page, /<title>Hello<\/title>/);
        assert.match(page, /<h1>Hello<\/h1>/);
      },
    );

    await t.step(
      "Python: full paths reach the worker, /health is at its root",
      async () => {
        assert.deepEqual(await get("/hello/py"), {
          status: 200,
          text: "Hello from Python at /hello/py\n",
        });
        assert.equal(
          (await get("/hello/py/x?y=1")).text,
          "Hello from Python at /hello/py/x?y=1\n",
        );
      },
    );

    await t.step({
      name: "Go: the least Go worker serves its full paths",
      ignore: !hasGo,
      fn: async () => {
        assert.deepEqual(await get("/first/go/x"), {
          status: 200,
          text: "Hello from Go at /first/go/x\n",
        });
      },
    });

    const names = ["hello", "hello_py", ...(hasGo ? ["first_go"] : [])];
    await t.step(
      "a restart stops each old instance with SIGTERM, and it exits 0",
      async () => {
        for (const name of names) {
          const before = (await server.status()).workers.find((w) =>
            w.name === name
          )!;
          pids.push(before.pid!);
          const res = await fetch(
            `${server.admin}/api/workers/${name}/restart`,
            { method: "POST", headers: { "content-type": "application/json" } },
          );
          assert.equal(res.status, 200, await res.text());
          await server.waitForLog(
            new RegExp(
              `worker instance stopped worker=${name} pid=${before.pid} code=0\\n`,
            ),
            15_000,
          );
        }
        const logs = server.logs();
        assert.doesNotMatch(logs, /Fatal Python error|SIGABRT|Traceback/);
        assert.doesNotMatch(logs, / ERROR /);
      },
    );

    await t.step(
      "each worker exits 0 by itself when its stdin closes",
      async () => {
        await exitsOnStdinEof(
          join(root, "workers/hello_py/bin/hello_py"),
          join(root, "workers/hello_py"),
        );
        if (hasGo) {
          await exitsOnStdinEof(
            join(root, "workers/first_go/bin/first_go"),
            join(root, "workers/first_go"),
          );
        }
      },
    );
  } finally {
    for (
      const w of (await server.status().catch(() => ({ workers: [] })))
        .workers
    ) if (w.pid) pids.push(w.pid);
    const status = await server.stop();
    assert.equal(status.code, 0);
    await waitFor(
      () => pids.every((pid) => !alive(pid)),
      5000,
      "every worker gone",
    );
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("the README is for users: no issue numbers, no missing documents, every task, how to stop", () => {
  assert.doesNotMatch(README, /\bissues? #?\d+|SPEC|§/i);
  for (const [, link] of README.matchAll(/\]\(([^)#]+)\)/g)) {
    if (/^https?:/.test(link!)) continue;
    assert.ok(
      (() => {
        try {
          return Deno.statSync(join(REPO, link!)).isFile;
        } catch {
          return false;
        }
      })(),
      `README links to "${link}", which is not in the repository`,
    );
  }
  const tasks = Object.keys(
    JSON.parse(Deno.readTextFileSync(join(REPO, "deno.json"))).tasks,
  );
  // The README names the tasks a user runs; the benchmarks and what they
  // measured are docs/benchmarks.md's.
  const benchmarks = Deno.readTextFileSync(join(REPO, "docs", "benchmarks.md"));
  for (const task of tasks) {
    const row = new RegExp(`\\| \`deno task ${task}\` +\\|`);
    assert.match(task.startsWith("bench") ? benchmarks : README, row, task);
  }
  assert.doesNotMatch(
    README,
    /req\/s|MiB\/s|MB\/s|\d(\.\d+)?×/,
    "measurements belong in docs/benchmarks.md",
  );
  // A code span broken across two lines renders as two broken spans.
  const prose = README.replace(/```[\s\S]*?```/g, "");
  for (const paragraph of prose.split(/\n\s*\n/)) {
    for (const line of paragraph.split("\n")) {
      const ticks = (line.match(/`/g) ?? []).length;
      assert.equal(ticks % 2, 0, `a code span is broken across lines: ${line}`);
    }
  }
  assert.match(README, /Ctrl\+C stops/);
  assert.match(README, /kill "\$\(cat logs\/tqserver\.pid\)"/);
  assert.match(README, /kill -HUP "\$\(cat logs\/tqserver\.pid\)"/);
  assert.match(README, /docs\/benchmarks\.md/);
  const lines = README.split("\n").length;
  assert.ok(lines < 280, `the README has ${lines} lines`);
});
