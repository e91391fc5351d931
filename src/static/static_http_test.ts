import assert from "node:assert/strict";
import zlib from "node:zlib";
import { join } from "node:path";
import { createLogger } from "../log/mod.ts";
import { get, type Tree, withTree } from "./_testing.ts";

const JS = Array.from(
  { length: 300 },
  (_, i) => `export function f${i}(a) { return a * ${i}; }\n`,
).join("");

function decode(bytes: Uint8Array, encoding: string | null): string {
  const out = encoding === "br"
    ? zlib.brotliDecompressSync(bytes)
    : encoding === "gzip"
    ? zlib.gunzipSync(bytes)
    : bytes;
  return new TextDecoder().decode(out);
}

async function withJs(
  fn: (tree: Tree) => Promise<void>,
  options = {},
): Promise<void> {
  await withTree(async (tree) => {
    await Deno.writeTextFile(join(tree.pub, "site.js"), JS);
    await fn(tree);
  }, options);
}

Deno.test("br and gzip are negotiated per Accept-Encoding, with Vary and an ETag per encoding", async (t) => {
  await withJs(async ({ handler }) => {
    const url = "/static/index/site.js";
    const tags = new Map<string | null, string>();
    for (
      const [accept, expected] of [
        ["gzip, deflate, br", "br"],
        ["gzip", "gzip"],
        ["br;q=0.1, gzip;q=0.9", "gzip"],
        ["identity", null],
        ["br;q=0, gzip;q=0", null],
      ] as const
    ) {
      await t.step(`${accept} -> ${expected}`, async () => {
        const res = await handler(get(url, { "accept-encoding": accept }));
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-encoding"), expected);
        assert.equal(res.headers.get("vary"), "Accept-Encoding");
        const bytes = await res.bytes();
        assert.equal(res.headers.get("content-length"), String(bytes.length));
        assert.equal(decode(bytes, expected), JS);
        if (expected) assert.ok(bytes.length < JS.length / 4);
        tags.set(expected, res.headers.get("etag")!);
      });
    }
    assert.equal(new Set(tags.values()).size, 3, "one ETag per encoding");
    await t.step(
      "304 for the ETag of the negotiated encoding only",
      async () => {
        const br = await handler(
          get(url, {
            "accept-encoding": "br",
            "if-none-match": tags.get("br")!,
          }),
        );
        assert.equal(br.status, 304);
        assert.equal(br.headers.get("vary"), "Accept-Encoding");
        const other = await handler(
          get(url, {
            "accept-encoding": "gzip",
            "if-none-match": tags.get("br")!,
          }),
        );
        assert.equal(other.status, 200);
        await other.body?.cancel();
      },
    );
    await t.step(
      "a file below min_bytes or of an image type is sent as it is",
      async () => {
        const small = await handler(
          get("/static/index/app.css", { "accept-encoding": "br" }),
        );
        assert.equal(small.headers.get("content-encoding"), null);
        await small.body?.cancel();
        const bin = await handler(
          get("/static/index/big.bin", { "accept-encoding": "br" }),
        );
        assert.equal(bin.headers.get("content-encoding"), null);
        assert.equal(bin.headers.get("vary"), null);
        await bin.body?.cancel();
      },
    );
  });
});

Deno.test("a compressible file too large to keep is compressed while streaming, and a Range still gets identity bytes", async () => {
  await withTree(async ({ handler, pub }) => {
    const big = JS.repeat(Math.ceil(300_000 / JS.length));
    await Deno.writeTextFile(join(pub, "bundle.js"), big);
    const url = "/static/index/bundle.js";
    const res = await handler(get(url, { "accept-encoding": "gzip" }));
    assert.equal(res.headers.get("content-encoding"), "gzip");
    assert.equal(res.headers.get("content-length"), null);
    assert.match(res.headers.get("etag") ?? "", /-gz"$/);
    assert.equal(decode(await res.bytes(), "gzip"), big);
    const range = await handler(
      get(url, { "accept-encoding": "gzip", range: "bytes=-10" }),
    );
    assert.equal(range.status, 206);
    assert.equal(range.headers.get("content-encoding"), null);
    assert.equal(await range.text(), big.slice(-10));
    assert.equal(handler.stats().entries, 1);
    assert.ok(handler.stats().bytes < 10_000, "the large body is not kept");
  });
});

Deno.test("a .br/.gz beside the file is preferred to compressing, and must itself stay inside public/", async (t) => {
  let now = 0;
  const clock = { now: () => now, advance: (ms: number) => now += ms };
  await withJs(async ({ handler, pub, dir }) => {
    // Markers that differ from what compressing site.js would give.
    const br = zlib.brotliCompressSync(new TextEncoder().encode("PRE-BR"));
    const gz = zlib.gzipSync(new TextEncoder().encode("PRE-GZ"));
    await Deno.writeFile(join(pub, "site.js.br"), br);
    await Deno.writeFile(join(pub, "site.js.gz"), gz);
    await Deno.writeTextFile(join(pub, "only.js"), JS);
    await Deno.writeFile(join(pub, "only.js.gz"), gz);
    await Deno.writeTextFile(join(pub, "out.js"), JS);
    await Deno.writeFile(join(dir, "evil.br"), br);
    await Deno.symlink(join(dir, "evil.br"), join(pub, "out.js.br"));
    const body = async (path: string, accept: string) => {
      const res = await handler(get(path, { "accept-encoding": accept }));
      const encoding = res.headers.get("content-encoding");
      return [encoding, decode(await res.bytes(), encoding)];
    };
    await t.step("br and gz files", async () => {
      assert.deepEqual(await body("/static/index/site.js", "br, gzip"), [
        "br",
        "PRE-BR",
      ]);
      assert.deepEqual(await body("/static/index/site.js", "gzip"), [
        "gzip",
        "PRE-GZ",
      ]);
      assert.deepEqual(await body("/static/index/site.js", "identity"), [
        null,
        JS,
      ]);
    });
    await t.step(
      "only a .gz: sent even to a client that prefers br",
      async () => {
        assert.deepEqual(await body("/static/index/only.js", "br, gzip"), [
          "gzip",
          "PRE-GZ",
        ]);
      },
    );
    await t.step(
      "a .gz that appears later is picked up at the next revalidation",
      async () => {
        assert.deepEqual(await body("/static/index/out.js", "gzip"), [
          "gzip",
          JS,
        ]);
        await Deno.writeFile(join(pub, "out.js.gz"), gz);
        clock.advance(1000);
        assert.deepEqual(await body("/static/index/out.js", "gzip"), [
          "gzip",
          "PRE-GZ",
        ]);
      },
    );
    await t.step("a .br symlinked out of public/ is ignored", async () => {
      assert.deepEqual(await body("/static/index/out.js", "br"), ["br", JS]);
    });
  }, { now: clock.now });
});

Deno.test("a Range on a compressible file is answered from the identity bytes", async () => {
  await withJs(async ({ handler }) => {
    const res = await handler(get("/static/index/site.js", {
      "accept-encoding": "br, gzip",
      range: "bytes=0-19",
    }));
    assert.equal(res.status, 206);
    assert.equal(res.headers.get("content-encoding"), null);
    assert.equal(res.headers.get("vary"), "Accept-Encoding");
    assert.equal(res.headers.get("content-range"), `bytes 0-19/${JS.length}`);
    assert.equal(await res.text(), JS.slice(0, 20));
  });
});

Deno.test("If-Match and If-Unmodified-Since answer 412 when they fail (RFC 9110 §13.1.1, §13.1.4)", async (t) => {
  await withTree(async ({ handler }) => {
    const url = "/static/index/hello.txt";
    const first = await handler(get(url));
    await first.body?.cancel();
    const etag = first.headers.get("etag")!;
    const lastModified = first.headers.get("last-modified")!;
    const past = new Date(Date.parse(lastModified) - 86_400_000).toUTCString();
    const future = new Date(Date.now() + 86_400_000).toUTCString();
    const cases: [string, Record<string, string>, number][] = [
      ["If-Match that does not match", { "if-match": '"nomatch"' }, 412],
      ["If-Match with a weak tag", { "if-match": `W/${etag}` }, 412],
      ["If-Match that matches", { "if-match": etag }, 200],
      ["If-Match in a list", { "if-match": `"a", ${etag}` }, 200],
      ["If-Match *", { "if-match": "*" }, 200],
      ["If-Unmodified-Since in the past", { "if-unmodified-since": past }, 412],
      ["If-Unmodified-Since at Last-Modified", {
        "if-unmodified-since": lastModified,
      }, 200],
      [
        "If-Unmodified-Since in the future",
        { "if-unmodified-since": future },
        200,
      ],
      [
        "If-Unmodified-Since that is no date",
        { "if-unmodified-since": "soon" },
        200,
      ],
      ["If-Match wins over If-Unmodified-Since", {
        "if-match": etag,
        "if-unmodified-since": past,
      }, 200],
      ["412 before a Range", { "if-match": '"x"', range: "bytes=0-1" }, 412],
      ["412 before 304", { "if-match": '"x"', "if-none-match": etag }, 412],
    ];
    for (const [name, headers, status] of cases) {
      await t.step(name, async () => {
        const res = await handler(get(url, headers));
        assert.equal(res.status, status);
        if (status === 200) assert.equal(await res.text(), "hello world");
        else await res.body?.cancel();
      });
    }
    await t.step("a HEAD gets the same 412", async () => {
      const res = await handler(
        get(url, { "if-match": '"x"' }, { method: "HEAD" }),
      );
      assert.equal(res.status, 412);
      assert.equal(res.body, null);
    });
  });
});

Deno.test("a symlink loop and a name too long are 404 and log nothing at ERROR", async () => {
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", write: (l) => lines.push(l) });
  await withTree(async ({ handler, pub }) => {
    await Deno.symlink("loop_b", join(pub, "loop_a"));
    await Deno.symlink("loop_a", join(pub, "loop_b"));
    for (
      const path of [
        "/static/index/loop_a",
        "/static/index/loop_a/x.css",
        "/static/index/" + "n".repeat(300),
        "/static/index/" + "n".repeat(300) + ".css",
        "/static/index/docs/" + "d".repeat(5000),
      ]
    ) {
      for (const method of ["GET", "HEAD"]) {
        const res = await handler(get(path, {}, { method }));
        assert.equal(res.status, 404, `${method} ${path.slice(0, 40)}`);
        await res.body?.cancel();
      }
    }
  }, { logger });
  assert.deepEqual(lines.filter((l) => / (ERROR|WARN) /.test(l)), []);
  assert.ok(lines.some((l) => l.includes(" DEBUG ")), "a debug line says why");
});

/** Sends one raw request and returns the status line and headers (without Date), and the body length. */
async function rawHead(
  port: number,
  method: string,
  target: string,
  headers: Record<string, string>,
): Promise<{ head: string; body: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    await conn.write(new TextEncoder().encode(
      `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`,
    ));
    const chunks: number[] = [];
    const buf = new Uint8Array(65536);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      for (let i = 0; i < n; i++) chunks.push(buf[i]!);
    }
    const raw = new TextDecoder("latin1").decode(new Uint8Array(chunks));
    const end = raw.indexOf("\r\n\r\n");
    const head = raw.slice(0, end).split("\r\n")
      .filter((line) => !/^date:/i.test(line)).sort().join("\n");
    return { head, body: raw.length - end - 4 };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}

Deno.test("HEAD answers carry exactly the GET's headers for every status, over the wire", async (t) => {
  await withJs(async ({ handler, pub }) => {
    await Deno.writeTextFile(join(pub, "bundle.js"), JS.repeat(200));
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) => handler(req),
    );
    try {
      const port = server.addr.port;
      const warm = await handler(get("/static/index/hello.txt"));
      const etag = warm.headers.get("etag")!;
      await warm.body?.cancel();
      const cases: [string, string, Record<string, string>][] = [
        ["200 cached", "/static/index/hello.txt", {}],
        ["200 streamed", "/static/index/big.bin", {}],
        ["200 br", "/static/index/site.js", { "accept-encoding": "br" }],
        ["200 br streamed", "/static/index/bundle.js", {
          "accept-encoding": "br",
        }],
        ["206", "/static/index/big.bin", { range: "bytes=5-99" }],
        ["301", "/static/index/docs", {}],
        ["304", "/static/index/hello.txt", { "if-none-match": etag }],
        ["400", "/static/index/%2e%2e/x", {}],
        ["404", "/static/index/missing.txt", {}],
        ["404 loop-free long name", "/static/index/" + "x".repeat(300), {}],
        ["412", "/static/index/hello.txt", { "if-match": '"nomatch"' }],
        ["416", "/static/index/hello.txt", { range: "bytes=500-" }],
      ];
      for (const [name, target, headers] of cases) {
        await t.step(name, async () => {
          const getRes = await rawHead(port, "GET", target, headers);
          const headRes = await rawHead(port, "HEAD", target, headers);
          // Chunked framing is the message's, not the representation's (RFC 9110 §9.3.2).
          const unframed = getRes.head.replace(
            "transfer-encoding: chunked\n",
            "",
          );
          assert.equal(headRes.head, unframed);
          assert.equal(headRes.body, 0);
          const length = /content-length: (\d+)/i.exec(getRes.head)?.[1];
          if (name === "200 br streamed") {
            assert.equal(length, undefined, "compressed while streaming");
          } else if (!name.startsWith("304")) {
            assert.equal(Number(length), getRes.body, "GET length is its body");
          }
        });
      }
    } finally {
      await server.shutdown();
    }
  });
});
