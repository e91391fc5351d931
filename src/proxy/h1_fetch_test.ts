import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { createH1Fetch } from "./_h1_fetch.ts";

function serve(handler: Deno.ServeHandler<Deno.NetAddr>) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    handler,
  );
  return { server, origin: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test("createH1Fetch() passes bytes, framing and headers through a keep-alive pool", async (t) => {
  const gz = new Uint8Array(
    gzipSync(new TextEncoder().encode("compressed ".repeat(500))),
  );
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  const ports = new Set<number>();
  const { server, origin } = serve((req, info) => {
    ports.add(info.remoteAddr.port);
    const path = req.url.slice(req.url.indexOf("/", 8));
    if (path === "/gzip") {
      return new Response(gz, { headers: { "content-encoding": "gzip" } });
    }
    if (path === "/chunked") {
      const parts = ["a", "bb", "ccc"];
      return new Response(
        new ReadableStream({
          pull(c) {
            const p = parts.shift();
            if (p === undefined) c.close();
            else c.enqueue(new TextEncoder().encode(p));
          },
        }),
      );
    }
    if (path === "/big") return new Response(big);
    if (path === "/cookies") {
      const h = new Headers();
      h.append("set-cookie", "a=1; Path=/");
      h.append("set-cookie", "b=2; Path=/");
      return new Response(null, { status: 204, headers: h });
    }
    if (path === "/redirect") {
      return new Response(null, { status: 302, headers: { location: "/x" } });
    }
    return new Response(
      `${req.method} ${path} host=${req.headers.get("host")}`,
    );
  });
  const h1 = createH1Fetch();
  try {
    await t.step("raw path, query and Host reach the server", async () => {
      const res = await h1(`${origin}/a%2Fb/c?q=%2F&x=1`, {
        headers: [["host", "example.test:8080"]],
      });
      assert.equal(
        await res.text(),
        "GET /a%2Fb/c?q=%2F&x=1 host=example.test:8080",
      );
    });
    await t.step(
      "gzip bytes are not decoded and keep their label",
      async () => {
        const res = await h1(`${origin}/gzip`);
        assert.equal(res.headers.get("content-encoding"), "gzip");
        assert.deepEqual(await res.bytes(), new Uint8Array(gz));
      },
    );
    await t.step("chunked and large bodies stream intact", async () => {
      assert.equal(await (await h1(`${origin}/chunked`)).text(), "abbccc");
      assert.deepEqual(await (await h1(`${origin}/big`)).bytes(), big);
    });
    await t.step("multiple Set-Cookie and 204 without body", async () => {
      const res = await h1(`${origin}/cookies`);
      assert.equal(res.status, 204);
      assert.deepEqual(res.headers.getSetCookie(), [
        "a=1; Path=/",
        "b=2; Path=/",
      ]);
      assert.equal(res.body, null);
    });
    await t.step("redirects are not followed", async () => {
      const res = await h1(`${origin}/redirect`);
      assert.equal(res.status, 302);
      assert.equal(res.headers.get("location"), "/x");
    });
    await t.step("HEAD has no body", async () => {
      const res = await h1(`${origin}/`, { method: "HEAD" });
      assert.equal(res.status, 200);
      assert.equal(res.body, null);
    });
    await t.step("sequential requests reuse one connection", () => {
      // /big and /chunked streamed to the end, so the socket went back to the pool.
      assert.equal(ports.size, 1);
    });
    await t.step(
      "a request with a body goes through the fallback",
      async () => {
        const res = await h1(`${origin}/post`, { method: "POST", body: "x" });
        assert.equal(await res.text(), "POST /post host=" + origin.slice(7));
      },
    );
  } finally {
    h1.close();
    await server.shutdown();
  }
});

Deno.test("createH1Fetch() retries a keep-alive connection the server closed", async () => {
  const first = serve(() => new Response("one"));
  const port = first.server.addr.port;
  const h1 = createH1Fetch();
  assert.equal(await (await h1(`${first.origin}/`)).text(), "one");
  await first.server.shutdown(); // closes the idle pooled connection
  const second = Deno.serve(
    { hostname: "127.0.0.1", port, onListen() {} },
    () => new Response("two"),
  );
  try {
    assert.equal(await (await h1(`${first.origin}/`)).text(), "two");
  } finally {
    h1.close();
    await second.shutdown();
  }
});

Deno.test("createH1Fetch() rejects with a TypeError on a closed port and aborts on signal", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const h1 = createH1Fetch();
  await assert.rejects(h1(`http://127.0.0.1:${port}/`), TypeError);

  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  const { server, origin } = serve(async () => {
    await held;
    return new Response("late");
  });
  try {
    const ctrl = new AbortController();
    const pending = h1(`${origin}/`, { signal: ctrl.signal });
    setTimeout(() => ctrl.abort(new DOMException("gone", "AbortError")), 50);
    await assert.rejects(
      pending,
      (err: unknown) => (err as Error).name === "AbortError",
    );
  } finally {
    release();
    h1.close();
    await server.shutdown();
  }
});
