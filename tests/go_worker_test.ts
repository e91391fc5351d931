// End-to-end: Go workers laid out as the deployment organization design says,
// run on the design's own config files (tests/testdata/design/config/, with
// only the ports changed so that tests can run side by side), and the example
// Go worker in workers/hello_go. Skipped, with a line saying so, without Go.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runBuildCli } from "../src/build/cli.ts";
import { GoBuilder } from "../src/build/go.ts";
import { createLogger } from "../src/log/mod.ts";
import {
  freePort,
  freePortRange,
  type Project,
  REPO,
  type RunningServer,
  startServer,
  waitFor,
} from "./_helpers.ts";
import { subscribe } from "./_dev_events.ts";

const HAS_GO = await (async () => {
  try {
    return (await new Deno.Command("go", { args: ["version"] }).output())
      .success;
  } catch {
    return false;
  }
})();
if (!HAS_GO) {
  console.log(
    "Go toolchain not found on PATH: skipping the Go worker tests (apt-get install golang-go)",
  );
}

const DESIGN = join(REPO, "tests", "testdata", "design", "config");

/** A Go worker as the design writes them: no go.mod, standard library only. */
function goSource(version: string): string {
  return `package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
)

const version = "${version}"

func main() {
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("TQ_PORT"), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			fmt.Fprint(w, "ok")
			return
		}
		if strings.HasSuffix(r.URL.Path, "/page") {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!doctype html><html><head><link rel=stylesheet href=/static/index/style.css></head><body>page</body></html>")
			return
		}
		fmt.Fprintf(w, "%s %s procs=%d env=%s", version, os.Getenv("TQ_WORKER_NAME"), runtime.GOMAXPROCS(0), os.Getenv("GOMAXPROCS"))
	})}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop <- syscall.SIGTERM }()
	go func() { <-stop; _ = srv.Shutdown(context.Background()) }()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`;
}

/** A project whose config/ is the design's two files, with free ports put in. */
function designProject(): Project {
  const root = Deno.makeTempDirSync({ prefix: "tq-go-" });
  const adminPort = freePort();
  const poolStart = freePortRange(40);
  Deno.mkdirSync(join(root, "config"));
  const server = Deno.readTextFileSync(join(DESIGN, "server.yaml"))
    .replace("server:\n", `server:\n  admin:\n    port: ${adminPort}\n`)
    .replace("port_range_start: 9000", `port_range_start: ${poolStart}`)
    .replace("port_range_end: 9999", `port_range_end: ${poolStart + 39}`);
  Deno.writeTextFileSync(join(root, "config", "server.yaml"), server);
  Deno.copyFileSync(
    join(DESIGN, "deployment.yaml"),
    join(root, "config", "deployment.yaml"),
  );
  for (const name of ["index", "api_users"]) {
    writeGoWorker(root, name, `${name}-v1`);
    Deno.mkdirSync(join(root, "workers", name, "public"), { recursive: true });
  }
  Deno.writeTextFileSync(
    join(root, "workers", "index", "public", "style.css"),
    "body { color: black }\n",
  );
  // A TypeScript worker: not a worker under the design's include_patterns.
  Deno.mkdirSync(join(root, "workers", "tsonly", "src"), { recursive: true });
  Deno.writeTextFileSync(
    join(root, "workers", "tsonly", "src", "main.ts"),
    "export {};\n",
  );
  return {
    root,
    adminPort,
    poolStart,
    cleanup: () => Deno.removeSync(root, { recursive: true }),
  };
}

function writeGoWorker(root: string, name: string, version: string): void {
  const src = join(root, "workers", name, "src");
  Deno.mkdirSync(src, { recursive: true });
  Deno.writeTextFileSync(join(src, "main.go"), goSource(version));
}

async function text(url: string): Promise<string> {
  const res = await fetch(url);
  return await res.text();
}

async function start(project: Project, mode: string): Promise<RunningServer> {
  const server = await startServer(project, ["--mode", mode], {
    waitReady: false,
    env: { DEPLOYMENT_MODE: "" },
  });
  // A cold Go build cache compiles net/http first: allow for it.
  await server.waitForLog("tqserver ready", 180_000);
  return server;
}

Deno.test({
  name:
    "dev on the design's config: Go workers are built, served, rebuilt on save; a compile error keeps the old one and reaches /_tq/events",
  ignore: !HAS_GO,
  fn: async (t) => {
    const project = designProject();
    const server = await start(project, "dev");
    const events = await subscribe(server);
    try {
      await t.step(
        "include_patterns: the Go folders are workers, the TypeScript one is skipped",
        async () => {
          assert.match(await text(`${server.base}/`), /^index-v1 index /);
          assert.match(
            await text(`${server.base}/api/users`),
            /^api_users-v1 api_users /,
          );
          assert.match(
            server.logs(),
            /worker skipped .*workers\/tsonly.*include_patterns.*\*\/src\/main\.go/,
          );
          const names = (await server.status()).workers.map((w) => w.name);
          assert.deepEqual(names.sort(), ["api_users", "index"]);
        },
      );

      await t.step(
        "binaries.path: each binary is at workers/{name}/bin/{name}",
        async () => {
          for (const name of ["index", "api_users"]) {
            const info = await Deno.stat(
              join(project.root, "workers", name, "bin", name),
            );
            assert.ok(info.isFile && (info.mode! & 0o111) !== 0);
          }
        },
      );

      await t.step(
        "go_max_procs becomes GOMAXPROCS: 1 by default, 2 under /api",
        async () => {
          assert.match(await text(`${server.base}/`), / procs=1 env=1$/);
          assert.match(
            await text(`${server.base}/api/users`),
            / procs=2 env=2$/,
          );
        },
      );

      await t.step(
        "watch_patterns: saving a .go file rebuilds and replaces that worker only",
        async () => {
          const pid = (await server.status()).workers.find((w) =>
            w.name === "api_users"
          )!.pid;
          writeGoWorker(project.root, "index", "index-v2");
          await waitFor(
            async () => (await text(`${server.base}/`)).startsWith("index-v2"),
            60_000,
            "index-v2 served",
          );
          await waitFor(
            () => events.list.some((e) => e.type === "reload"),
            5000,
            "a reload event",
          );
          const after = (await server.status()).workers;
          assert.equal(after.find((w) => w.name === "api_users")!.pid, pid);
          assert.equal(
            after.find((w) => w.name === "index")!.last_restart_reason,
            "build",
          );
        },
      );

      await t.step(
        "a compile error keeps the old instance; the error event has file and line",
        async () => {
          const main = join(project.root, "workers", "index", "src", "main.go");
          const broken = goSource("index-v3").replace(
            "\tstop := make(chan os.Signal, 1)\n",
            "\tstop := make(chan os.Signal, 1)\n\tundefinedThing()\n",
          );
          const line = broken.split("\n").indexOf("\tundefinedThing()") + 1;
          Deno.writeTextFileSync(main, broken);
          const error = await waitFor(
            () => events.list.find((e) => e.type === "error"),
            60_000,
            "an error event",
          );
          assert.equal(error.data.worker, "index");
          assert.equal(error.data.file, main);
          assert.equal(error.data.line, line);
          assert.match(String(error.data.message), /undefined: undefinedThing/);
          assert.match(await text(`${server.base}/`), /^index-v2 /);
          const index = (await server.status()).workers.find((w) =>
            w.name === "index"
          )!;
          assert.equal(index.status, "healthy");
          assert.match(index.last_error ?? "", /main\.go:\d+/);
          writeGoWorker(project.root, "index", "index-v4");
          await waitFor(
            async () => (await text(`${server.base}/`)).startsWith("index-v4"),
            60_000,
            "index-v4 served",
          );
        },
      );

      await t.step(
        "watch_resource_changes: true swaps CSS; false stops watching public/",
        async () => {
          const css = join(
            project.root,
            "workers",
            "index",
            "public",
            "style.css",
          );
          Deno.writeTextFileSync(css, "body { color: red }\n");
          await waitFor(
            () => events.list.some((e) => e.type === "css"),
            10_000,
            "a css event",
          );
          const deployment = join(project.root, "config", "deployment.yaml");
          const yaml = Deno.readTextFileSync(deployment);
          assert.ok(yaml.includes("watch_resource_changes: true"));
          Deno.writeTextFileSync(
            deployment,
            yaml.replace(
              "watch_resource_changes: true",
              "watch_resource_changes: false",
            ),
          );
          await server.waitForLog("config reloaded", 10_000);
          const seen = events.list.length;
          Deno.writeTextFileSync(css, "body { color: blue }\n");
          // What is tested is that nothing happens: no condition, only time.
          await new Promise((r) => setTimeout(r, 1500));
          // Still watching sources: this edit is served, and the CSS one was not acted on.
          writeGoWorker(project.root, "api_users", "api_users-v2");
          await waitFor(
            async () =>
              (await text(`${server.base}/api/users`)).startsWith(
                "api_users-v2",
              ),
            60_000,
            "api_users-v2 served",
          );
          const later = events.list.slice(seen).map((e) => e.type);
          assert.ok(!later.includes("css"), later.join(","));
        },
      );
    } finally {
      events.close();
      await server.stop();
      project.cleanup();
    }
  },
});

Deno.test({
  name:
    "prod on the design's config: deno task build uses ldflags -s -w, and SIGHUP (trigger: sighup) replaces a rebuilt Go worker",
  ignore: !HAS_GO,
  fn: async () => {
    const project = designProject();
    const build = (args: string[] = []) =>
      runBuildCli(["--root", project.root, "--mode", "prod", ...args], {
        logger: createLogger({ level: "error" }),
        stderr: () => {},
      });
    assert.equal(await build(), 0);
    const bin = join(project.root, "workers", "index", "bin", "index");
    const info = await new Deno.Command("go", { args: ["version", "-m", bin] })
      .output();
    assert.match(new TextDecoder().decode(info.stdout), /-ldflags="-s -w"/);
    const server = await start(project, "prod");
    try {
      assert.match(await text(`${server.base}/`), /^index-v1 index procs=1/);
      writeGoWorker(project.root, "index", "index-v2");
      assert.equal(await build(["index"]), 0);
      assert.match(await text(`${server.base}/`), /^index-v1 /, "no watcher");
      server.process.kill("SIGHUP");
      await waitFor(
        async () => (await text(`${server.base}/`)).startsWith("index-v2"),
        20_000,
        "index-v2 after SIGHUP",
      );
      const index = (await server.status()).workers.find((w) =>
        w.name === "index"
      )!;
      assert.equal(index.last_restart_reason, "binary-changed");
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});

Deno.test({
  name:
    "the example Go worker answers /health, drains on SIGTERM and exits on stdin EOF",
  ignore: !HAS_GO,
  fn: async (t) => {
    const dir = join(REPO, "workers", "hello_go");
    const out = await Deno.makeTempDir({ prefix: "tq-hello-go-" });
    const binPath = join(out, "hello_go");
    const result = await new GoBuilder().build({
      name: "hello_go",
      entry: join(dir, "src", "main.go"),
      binPath,
      dir,
    });
    assert.equal(result.status, "built", result.error?.message);
    const run = async () => {
      const port = freePort();
      const child = new Deno.Command(binPath, {
        cwd: dir,
        env: {
          TQ_PORT: String(port),
          TQ_WORKER_NAME: "hello_go",
          TQ_WORKER_ROUTE: "/hello/go",
          TQ_MODE: "prod",
          GOMAXPROCS: "1",
        },
        stdin: "piped",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const origin = `http://127.0.0.1:${port}`;
      await waitFor(
        async () => {
          try {
            return (await fetch(`${origin}/health`)).ok;
          } catch {
            return false;
          }
        },
        10_000,
        "hello_go healthy",
      );
      return { child, origin };
    };
    try {
      await t.step(
        "serves its route with the contract's environment",
        async () => {
          const { child, origin } = await run();
          try {
            const page = await text(`${origin}/hello/go?name=tq`);
            assert.match(page, /Hello, tq, from Go/);
            const info = await (await fetch(`${origin}/hello/go/info`)).json();
            assert.equal(info.worker, "hello_go");
            assert.equal(info.gomaxprocs, 1);
          } finally {
            child.kill("SIGKILL");
            await child.status;
          }
        },
      );
      await t.step(
        "SIGTERM lets the request in flight finish, then exits 0",
        async () => {
          const { child, origin } = await run();
          const slow = fetch(`${origin}/hello/go/slow`);
          // Nothing outside the worker shows the request arrived: a moment
          // for it to be in flight before the SIGTERM.
          await new Promise((r) => setTimeout(r, 150));
          child.kill("SIGTERM");
          const res = await slow;
          assert.equal(res.status, 200);
          assert.equal(await res.text(), "slow done\n");
          const status = await child.status;
          assert.equal(status.code, 0);
        },
      );
      await t.step("stdin EOF (the server died) makes it exit", async () => {
        const { child } = await run();
        await child.stdin.close();
        const status = await Promise.race([
          child.status,
          new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 5000)),
        ]);
        if (status === "timeout") {
          child.kill("SIGKILL");
          await child.status;
        }
        assert.notEqual(status, "timeout");
      });
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a custom binaries.path is where the builder writes, the supervisor runs and SIGHUP looks",
  ignore: !HAS_GO,
  fn: async () => {
    const project = designProject();
    const deployment = join(project.root, "config", "deployment.yaml");
    Deno.writeTextFileSync(
      deployment,
      Deno.readTextFileSync(deployment)
        .replace('format: "{worker_name}"', 'format: "{worker_name}.bin"')
        .replace(
          'path: "workers/{worker_name}/bin/{worker_name}"',
          'path: "dist/{worker_name}.bin"',
        )
        .replace('output_dir: "bin"', 'output_dir: "../../dist"')
        .replace('output_dir: "workers"', 'output_dir: "dist"'),
    );
    const build = () =>
      runBuildCli(["--root", project.root, "--mode", "prod"], {
        logger: createLogger({ level: "error" }),
        stderr: () => {},
      });
    assert.equal(await build(), 0);
    const bin = join(project.root, "dist", "index.bin");
    assert.ok(Deno.statSync(bin).isFile);
    assert.throws(() =>
      Deno.statSync(join(project.root, "workers", "index", "bin", "index"))
    );
    const server = await start(project, "prod");
    try {
      assert.match(await text(`${server.base}/`), /^index-v1 /);
      const index = (await server.status()).workers.find((w) =>
        w.name === "index"
      ) as { binary_path?: string } | undefined;
      assert.equal(index?.binary_path, bin);
      writeGoWorker(project.root, "index", "index-v2");
      assert.equal(await build(), 0);
      server.process.kill("SIGHUP");
      await waitFor(
        async () => (await text(`${server.base}/`)).startsWith("index-v2"),
        20_000,
        "index-v2 after SIGHUP",
      );
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});
