import assert from "node:assert/strict";
import { join } from "node:path";
import { createStaticHandler } from "./mod.ts";
import { READ_WHOLE_MAX_BYTES } from "./_buffers.ts";
import { waitFor } from "../../tests/_helpers.ts";
import {
  BIG_SIZE,
  CSS,
  get,
  makeTree,
  openFilesUnder,
  rawRequest,
  SECRET,
  TRAVERSALS,
  withTree,
} from "./_testing.ts";

Deno.test("GET serves a public file with type, length, caching headers and body", async () => {
  await withTree(async ({ handler }) => {
    const res = await handler(get("/static/index/app.css?v=3"));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/css; charset=utf-8");
    assert.equal(res.headers.get("content-length"), String(CSS.length));
    assert.equal(res.headers.get("cache-control"), "public, max-age=60");
    assert.equal(res.headers.get("accept-ranges"), "bytes");
    assert.match(res.headers.get("etag") ?? "", /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.ok(Date.parse(res.headers.get("last-modified") ?? "") > 0);
    assert.equal(await res.text(), CSS);

    const js = await handler(get("/static/index/nested/deep/mod.js"));
    assert.equal(
      js.headers.get("content-type"),
      "text/javascript; charset=utf-8",
    );
    assert.equal(await js.text(), "export {};\n");
    const raw = await handler(get("/static/index/data.unknownext"));
    assert.equal(raw.headers.get("content-type"), "application/octet-stream");
    await raw.body?.cancel();
    const big = await handler(get("/static/index/big.bin"));
    assert.equal(big.headers.get("content-length"), String(BIG_SIZE));
    assert.equal((await big.bytes()).length, BIG_SIZE);
  });
});

Deno.test("HEAD answers the GET headers without a body", async () => {
  await withTree(async ({ handler }) => {
    const getRes = await handler(get("/static/index/app.css"));
    await getRes.body?.cancel();
    const res = await handler(
      get("/static/index/app.css", {}, { method: "HEAD" }),
    );
    assert.equal(res.status, 200);
    assert.equal(res.body, null);
    for (
      const name of [
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "cache-control",
      ]
    ) {
      assert.equal(res.headers.get(name), getRes.headers.get(name), name);
    }
  });
});

Deno.test("conditional GET answers 304, If-None-Match taking precedence", async (t) => {
  await withTree(async ({ handler }) => {
    const first = await handler(get("/static/index/app.css"));
    await first.body?.cancel();
    const etag = first.headers.get("etag")!;
    const lastModified = first.headers.get("last-modified")!;
    await t.step(
      "a matching ETag (also weak, in a list) gives 304",
      async () => {
        for (const tag of [etag, `W/${etag}`, `"nope", ${etag}`, "*"]) {
          const res = await handler(
            get("/static/index/app.css", { "if-none-match": tag }),
          );
          assert.equal(res.status, 304, tag);
          assert.equal(res.body, null);
          assert.equal(res.headers.get("etag"), etag);
          assert.equal(res.headers.get("cache-control"), "public, max-age=60");
        }
      },
    );
    await t.step(
      "If-Modified-Since at or after Last-Modified gives 304",
      async () => {
        const res = await handler(
          get("/static/index/app.css", { "if-modified-since": lastModified }),
        );
        assert.equal(res.status, 304);
        const older = new Date(Date.parse(lastModified) - 60_000).toUTCString();
        const stale = await handler(
          get("/static/index/app.css", { "if-modified-since": older }),
        );
        assert.equal(stale.status, 200);
        assert.equal(await stale.text(), CSS);
      },
    );
    await t.step("a non-matching ETag wins over a matching date", async () => {
      const res = await handler(get("/static/index/app.css", {
        "if-none-match": '"other"',
        "if-modified-since": lastModified,
      }));
      assert.equal(res.status, 200);
      assert.equal(await res.text(), CSS);
    });
  });
});

Deno.test("byte ranges answer 206 with Content-Range, or 416 when unsatisfiable", async (t) => {
  await withTree(async ({ handler, big }) => {
    const url = "/static/index/big.bin";
    await t.step("a closed range across chunk boundaries", async () => {
      const res = await handler(get(url, { range: "bytes=100000-250000" }));
      assert.equal(res.status, 206);
      assert.equal(
        res.headers.get("content-range"),
        `bytes 100000-250000/${BIG_SIZE}`,
      );
      assert.equal(res.headers.get("content-length"), "150001");
      assert.deepEqual(await res.bytes(), big.subarray(100000, 250001));
    });
    await t.step("open-ended and suffix ranges", async () => {
      const open = await handler(get(url, { range: "bytes=299990-" }));
      assert.equal(
        open.headers.get("content-range"),
        `bytes 299990-299999/${BIG_SIZE}`,
      );
      assert.deepEqual(await open.bytes(), big.subarray(299990));
      const suffix = await handler(
        get("/static/index/hello.txt", { range: "bytes=-5" }),
      );
      assert.equal(suffix.status, 206);
      assert.equal(await suffix.text(), "world");
      const clamp = await handler(
        get("/static/index/hello.txt", { range: "bytes=6-999" }),
      );
      assert.equal(clamp.headers.get("content-range"), "bytes 6-10/11");
      assert.equal(await clamp.text(), "world");
    });
    await t.step(
      "unsatisfiable ranges give 416 with bytes */size",
      async () => {
        for (const range of ["bytes=11-", "bytes=500-600", "bytes=-0"]) {
          const res = await handler(get("/static/index/hello.txt", { range }));
          assert.equal(res.status, 416, range);
          assert.equal(res.headers.get("content-range"), "bytes */11");
          await res.body?.cancel();
        }
      },
    );
    await t.step(
      "multi-range, other units and a stale If-Range get the full 200",
      async () => {
        for (
          const headers of [
            { range: "bytes=0-1,4-5" },
            { range: "items=0-1" },
            { range: "bytes=0-1", "if-range": '"stale"' },
          ]
        ) {
          const res = await handler(get("/static/index/hello.txt", headers));
          assert.equal(res.status, 200, JSON.stringify(headers));
          assert.equal(await res.text(), "hello world");
        }
      },
    );
    await t.step(
      "HEAD with a range has the 206 headers and no body",
      async () => {
        const res = await handler(
          get(url, { range: "bytes=0-9" }, { method: "HEAD" }),
        );
        assert.equal(res.status, 206);
        assert.equal(res.headers.get("content-length"), "10");
        assert.equal(res.body, null);
      },
    );
  });
});

Deno.test("a cancelled body (client abort) closes the file", async () => {
  await withTree(async ({ handler, pub }) => {
    // Over READ_WHOLE_MAX_BYTES, so it streams from the file (sparse: cheap).
    await Deno.writeFile(join(pub, "streamed.bin"), new Uint8Array(0));
    await Deno.truncate(join(pub, "streamed.bin"), READ_WHOLE_MAX_BYTES + 1);
    // The resource sanitizer fails this test if either handle stays open.
    const full = await handler(get("/static/index/streamed.bin"));
    const reader = full.body!.getReader();
    await reader.read();
    await reader.cancel();
    const ranged = await handler(
      get("/static/index/big.bin", { range: "bytes=10-200000" }),
    );
    const rangedReader = ranged.body!.getReader();
    await rangedReader.read();
    await rangedReader.cancel();
  });
});

Deno.test("methods other than GET and HEAD answer 405 with Allow", async () => {
  await withTree(async ({ handler }) => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS"]) {
      const res = await handler(get("/static/index/app.css", {}, { method }));
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get("allow"), "GET, HEAD");
      await res.body?.cancel();
    }
  });
});

Deno.test("directories are never listed: 404 without index.html, index.html otherwise", async () => {
  await withTree(async ({ handler }) => {
    for (
      const path of [
        "/static/index/empty/",
        "/static/index/empty",
        "/static/index/nested/",
        "/static/index/",
      ]
    ) {
      const res = await handler(get(path));
      assert.equal(res.status, 404, path);
      assert.equal(await res.text(), "Not found\n");
    }
    const index = await handler(get("/static/index/docs/"));
    assert.equal(index.status, 200);
    assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(await index.text(), "<h1>docs</h1>");
    const redirect = await handler(get("/static/index/docs?x=1"));
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get("location"), "/static/index/docs/?x=1");
    await redirect.body?.cancel();
    const fileSlash = await handler(get("/static/index/app.css/"));
    assert.equal(fileSlash.status, 404);
    await fileSlash.body?.cancel();
  });
});

Deno.test("symlinks inside public/ are served; decoded names are taken literally", async () => {
  await withTree(async ({ handler }) => {
    const link = await handler(get("/static/index/link_in.css"));
    assert.equal(link.status, 200);
    assert.equal(await link.text(), CSS);
    // %252e%252e decodes once to the file name "%2e%2e", never to "..".
    const literal = await handler(get("/static/index/%252e%252e"));
    assert.equal(literal.status, 200);
    assert.equal(await literal.text(), "literal name");
    const utf8 = await handler(get("/static/index/caf%C3%A9.txt"));
    assert.equal(await utf8.text(), "utf-8 name");
  });
});

Deno.test("isWorker limits which workers are served", async () => {
  const tree = await makeTree({ isWorker: (name) => name !== "index" });
  try {
    const res = await tree.handler(get("/static/index/app.css"));
    assert.equal(res.status, 404);
    await res.body?.cancel();
  } finally {
    await Deno.remove(tree.dir, { recursive: true });
  }
});

Deno.test("createStaticHandler rejects bad options by name", () => {
  assert.throws(() => createStaticHandler({ workersDir: "rel" }), /"rel"/);
  assert.throws(
    () => createStaticHandler({ workersDir: "/w", urlPrefix: "static" }),
    /"static"/,
  );
  assert.throws(
    () => createStaticHandler({ workersDir: "/w", maxAgeSeconds: -1 }),
    RangeError,
  );
});

Deno.test("traversal forms answer 400 or 404 and never leak a byte outside public/", async () => {
  await withTree(async ({ handler }) => {
    for (const [path] of TRAVERSALS) {
      // Request parses with WHATWG URL rules (normalising `..` and `\`); the
      // raw forms are exercised over TCP in the next test.
      const res = await handler(get(path));
      assert.ok([400, 404].includes(res.status), `${path} -> ${res.status}`);
      assert.ok(!(await res.text()).includes(SECRET), path);
    }
  });
});

Deno.test("raw traversal paths over TCP are refused without client-side normalisation", async () => {
  await withTree(async ({ handler }) => {
    const seen: string[] = [];
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) => {
        seen.push(req.url);
        return handler(req);
      },
    );
    try {
      const ok = await rawRequest(server.addr.port, "/static/index/app.css");
      assert.match(ok, /^HTTP\/1\.1 200 /);
      assert.ok(ok.endsWith(CSS));
      for (const [target, status] of TRAVERSALS) {
        const response = await rawRequest(server.addr.port, target);
        assert.match(
          response,
          new RegExp(`^HTTP/1\\.1 ${status} `),
          `${target}\n${response}`,
        );
        assert.ok(!response.includes(SECRET), target);
      }
      // Guards the premise: the server saw the raw, unnormalised targets.
      assert.ok(
        seen.includes("http://localhost/static/index/../private/secret.txt"),
      );
    } finally {
      await server.shutdown();
    }
  });
});

Deno.test("a client that disconnects mid-download releases the file", async () => {
  await withTree(async ({ handler, workersDir }) => {
    // A sparse 64 MiB file: far more than socket buffers absorb, cheap to make.
    const huge = join(workersDir, "index/public/huge.bin");
    await Deno.writeFile(huge, new Uint8Array(0));
    await Deno.truncate(huge, 64 * 1024 * 1024);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) => handler(req),
    );
    try {
      for (const range of ["", "Range: bytes=1-60000000\r\n"]) {
        const conn = await Deno.connect({
          hostname: "127.0.0.1",
          port: server.addr.port,
        });
        await conn.write(new TextEncoder().encode(
          `GET /static/index/huge.bin HTTP/1.1\r\nHost: localhost\r\n${range}\r\n`,
        ));
        try {
          const n = await conn.read(new Uint8Array(1024));
          assert.ok(n !== null && n > 0);
          assert.ok((await openFilesUnder(huge)).length > 0, "not streaming");
        } finally {
          // Also on a failed assertion: shutdown() waits for this response.
          conn.close();
        }
        await waitFor(
          async () => (await openFilesUnder(huge)).length === 0,
          3000,
          "the file to be closed after the disconnect",
        );
      }
    } finally {
      await server.shutdown();
    }
  });
});
