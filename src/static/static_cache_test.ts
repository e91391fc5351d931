import assert from "node:assert/strict";
import { join } from "node:path";
import { createStaticHandler } from "./mod.ts";
import {
  CSS,
  get,
  rawRequest,
  SECRET,
  TRAVERSALS,
  type Tree,
  withTree,
} from "./_testing.ts";

/** A clock the test moves by hand. */
function manualClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => t += ms };
}

async function text(tree: Tree, path: string): Promise<string> {
  const res = await tree.handler(get(path));
  return await res.text();
}

async function hasRsync(): Promise<boolean> {
  try {
    return (await new Deno.Command("rsync", {
      args: ["--version"],
      stdout: "null",
    }).output()).success;
  } catch {
    return false;
  }
}

/** Replaces `target` the way rsync does: write a temp file beside it, keep the old mtime, rename over. */
async function renameOver(target: string, content: string): Promise<void> {
  const { mtime } = await Deno.stat(target);
  const tmp = join(target, "..", `.${Date.now()}.tmp`);
  await Deno.writeTextFile(tmp, content);
  await Deno.utime(tmp, mtime!, mtime!);
  await Deno.rename(tmp, target);
}

// Same length and, below, the same mtime: only the inode tells the versions apart.
const CSS2 = "body { color: blu; }\n";

Deno.test("a cached file replaced by an rsync-style rename is served new within revalidate_ms", async (t) => {
  const clock = manualClock();
  await withTree(async (tree) => {
    const path = "/static/index/app.css";
    const file = join(tree.pub, "app.css");
    await t.step("rename over, same size and mtime", async () => {
      assert.equal(await text(tree, path), CSS);
      await renameOver(file, CSS2);
      clock.advance(999);
      // Inside the window the cached bytes answer: the cache really is in use.
      assert.equal(await text(tree, path), CSS);
      clock.advance(1);
      assert.equal(await text(tree, path), CSS2);
      assert.ok(tree.handler.stats().revalidations >= 1);
    });
    const rsync = await hasRsync();
    // rsync is optional here (apt-get install rsync); the rename above is its pattern.
    await t.step({
      name: "real rsync",
      ignore: !rsync,
      fn: async () => {
        const src = await Deno.makeTempDir({ prefix: "tq_rsync_" });
        try {
          await Deno.writeTextFile(join(src, "app.css"), "body{color:green}\n");
          clock.advance(1000);
          assert.equal(await text(tree, path), CSS2);
          const out = await new Deno.Command("rsync", {
            args: ["-a", join(src, "app.css"), file],
            stderr: "piped",
          }).output();
          assert.ok(out.success, new TextDecoder().decode(out.stderr));
          clock.advance(1000);
          assert.equal(await text(tree, path), "body{color:green}\n");
        } finally {
          await Deno.remove(src, { recursive: true });
        }
      },
    });
    await t.step(
      "a streamed (large) file is never stale, even inside the window",
      async () => {
        const big = "/static/index/big.bin";
        const first = await tree.handler(get(big));
        await first.body?.cancel();
        await renameOver(join(tree.pub, "big.bin"), "replaced");
        assert.equal(await text(tree, big), "replaced");
      },
    );
  }, { revalidateMs: 1000, now: clock.now });
});

Deno.test("revalidate_ms 0 checks every request; cache_max_bytes 0 keeps nothing", async () => {
  for (const options of [{ revalidateMs: 0 }, { cacheMaxBytes: 0 }]) {
    await withTree(async (tree) => {
      const path = "/static/index/app.css";
      assert.equal(await text(tree, path), CSS);
      await renameOver(join(tree.pub, "app.css"), CSS2);
      assert.equal(await text(tree, path), CSS2, JSON.stringify(options));
      if (options.cacheMaxBytes === 0) {
        assert.equal(tree.handler.stats().entries, 0);
      }
    }, { ...options, now: () => 0 });
  }
});

Deno.test("invalidate() drops a worker's entries at once (the dev watcher's and SIGHUP's hook)", async () => {
  await withTree(async (tree) => {
    const path = "/static/index/app.css";
    assert.equal(await text(tree, path), CSS);
    await renameOver(join(tree.pub, "app.css"), CSS2);
    assert.equal(await text(tree, path), CSS, "cached until invalidated");
    assert.equal(tree.handler.invalidate("other"), 0);
    assert.equal(tree.handler.invalidate("index"), 1);
    assert.equal(await text(tree, path), CSS2);
  }, { revalidateMs: 3_600_000 });
});

Deno.test("the traversal list passes with a warm cache, and a cached file turned into a symlink out, a dot file or a FIFO is 404", async (t) => {
  const clock = manualClock();
  await withTree(async (tree) => {
    const warm = [
      "/static/index/app.css",
      "/static/index/hello.txt",
      "/static/index/big.bin",
      "/static/index/link_in.css",
      "/static/index/docs/",
      "/static/index/nested/deep/mod.js",
      "/static/index/%252e%252e",
    ];
    for (const path of warm) {
      const res = await tree.handler(get(path, { "accept-encoding": "br" }));
      assert.equal(res.status, 200, path);
      await res.body?.cancel();
    }
    assert.ok(tree.handler.stats().entries >= warm.length - 1);
    await t.step(
      "every traversal form, in-process and raw over TCP",
      async () => {
        for (const [path] of TRAVERSALS) {
          const res = await tree.handler(get(path));
          assert.ok(
            [400, 404].includes(res.status),
            `${path} -> ${res.status}`,
          );
          assert.ok(!(await res.text()).includes(SECRET), path);
        }
        const server = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen() {} },
          (req) => tree.handler(req),
        );
        try {
          for (const [target, status] of TRAVERSALS) {
            const response = await rawRequest(server.addr.port, target);
            assert.match(
              response,
              new RegExp(`^HTTP/1\\.1 ${status} `),
              target,
            );
            assert.ok(!response.includes(SECRET), target);
          }
        } finally {
          await server.shutdown();
        }
      },
    );
    await t.step(
      "a streamed file swapped for a symlink out is 404 at once",
      async () => {
        const link = join(tree.pub, ".swap");
        await Deno.symlink(join(tree.dir, "outside.txt"), link);
        await Deno.rename(link, join(tree.pub, "big.bin"));
        const res = await tree.handler(get("/static/index/big.bin"));
        const body = await res.text();
        assert.equal(res.status, 404);
        assert.ok(!body.includes(SECRET));
      },
    );
    await t.step(
      "a cached file swapped for a symlink out is 404 once revalidated",
      async () => {
        const link = join(tree.pub, ".swap");
        await Deno.symlink(
          join(tree.workersDir, "index/private/secret.txt"),
          link,
        );
        await Deno.rename(link, join(tree.pub, "app.css"));
        // Inside the window the old, checked bytes answer, never the new target's.
        assert.equal(await text(tree, "/static/index/app.css"), CSS);
        clock.advance(1000);
        const res = await tree.handler(get("/static/index/app.css"));
        assert.equal(res.status, 404);
        assert.ok(!(await res.text()).includes(SECRET));
      },
    );
    await t.step(
      "a cached file replaced by a FIFO is 404 without blocking",
      async () => {
        const fifo = join(tree.pub, ".fifo");
        const made = await new Deno.Command("mkfifo", { args: [fifo] })
          .output();
        assert.ok(made.success);
        await Deno.rename(fifo, join(tree.pub, "hello.txt"));
        clock.advance(1000);
        const res = await Promise.race([
          tree.handler(get("/static/index/hello.txt")),
          new Promise<"hung">((r) => setTimeout(() => r("hung"), 3000)),
        ]);
        assert.notEqual(res, "hung");
        assert.equal((res as Response).status, 404);
        await (res as Response).body?.cancel();
      },
    );
    await t.step("a dot file stays 404 with everything cached", async () => {
      const res = await tree.handler(get("/static/index/.env"));
      assert.equal(res.status, 404);
      assert.ok(!(await res.text()).includes(SECRET));
    });
  }, { revalidateMs: 1000, now: clock.now });
});

Deno.test("the cache stays within cache_max_bytes, evicting the least recently used, and counts hits and misses", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tq_static_lru_" });
  try {
    const pub = join(dir, "workers", "w", "public");
    await Deno.mkdir(pub, { recursive: true });
    for (const name of ["a", "b", "c"]) {
      await Deno.writeFile(join(pub, `${name}.bin`), new Uint8Array(2000));
    }
    // Each entry holds its 2000 bytes twice (they and the Response cloned per
    // request) plus ~1 KiB of overhead: two fit, three do not.
    const handler = createStaticHandler({
      workersDir: join(dir, "workers"),
      cacheMaxBytes: 12_000,
      revalidateMs: 3_600_000,
    });
    const fetchBytes = async (name: string) =>
      (await (await handler(get(`/static/w/${name}.bin`))).bytes()).length;
    assert.equal(await fetchBytes("a"), 2000);
    assert.equal(await fetchBytes("b"), 2000);
    assert.equal(await fetchBytes("a"), 2000); // a is now the most recent
    assert.equal(await fetchBytes("c"), 2000); // evicts b
    const stats = handler.stats();
    assert.equal(stats.entries, 2);
    assert.ok(stats.bytes <= stats.maxBytes, JSON.stringify(stats));
    assert.equal(stats.evictions, 1);
    assert.equal(stats.hits, 1);
    assert.equal(stats.misses, 3);
    assert.equal(stats.servedBytes, 8000);
    await fetchBytes("a");
    assert.equal(handler.stats().hits, 2, "a survived the eviction");
    await fetchBytes("b");
    assert.equal(handler.stats().misses, 4, "b was the one evicted");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a streamed file replaced by a FIFO inside the revalidation window is 404, and the server does not block", async () => {
  // In a child process: a FIFO opened synchronously blocks the whole event
  // loop, which no timer in this process could catch.
  const testing = new URL("./_testing.ts", import.meta.url).href;
  const script = `
    import { join } from "node:path";
    import { makeTree } from ${JSON.stringify(testing)};
    const tree = await makeTree({ revalidateMs: 3_600_000, now: () => 0 });
    const url = "http://x/static/index/big.bin";
    const first = await tree.handler(new Request(url));
    await first.body?.cancel();
    const fifo = join(tree.pub, ".fifo");
    if (!new Deno.Command("mkfifo", { args: [fifo] }).outputSync().success) {
      throw new Error("mkfifo failed");
    }
    Deno.renameSync(fifo, join(tree.pub, "big.bin"));
    const res = await tree.handler(new Request(url));
    await res.body?.cancel();
    await Deno.remove(tree.dir, { recursive: true });
    console.log("status " + res.status);
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      "-",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const out = await child.output();
  clearTimeout(timer);
  assert.equal(
    new TextDecoder().decode(out.stdout).trim(),
    "status 404",
    `the child blocked or failed: ${new TextDecoder().decode(out.stderr)}`,
  );
});

Deno.test("a cached file's answers are independent copies: a header set on one never reaches the next", async () => {
  await withTree(async (tree) => {
    const path = "/static/index/app.css";
    const first = await tree.handler(get(path));
    const etag = first.headers.get("etag")!;
    first.headers.set("connection", "close");
    assert.equal(await first.text(), CSS);
    for (let i = 0; i < 3; i++) {
      const res = await tree.handler(get(path));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("connection"), null);
      assert.equal(res.headers.get("content-length"), String(CSS.length));
      assert.equal(await res.text(), CSS);
    }
    const unchanged = await tree.handler(get(path, { "if-none-match": etag }));
    assert.equal(unchanged.status, 304);
    unchanged.headers.set("connection", "close");
    const again = await tree.handler(get(path, { "if-none-match": etag }));
    assert.equal(again.status, 304);
    assert.equal(again.headers.get("connection"), null);
    assert.equal(again.headers.get("etag"), etag);
    assert.ok(tree.handler.stats().hits >= 4, "served from the cache");
  });
});
