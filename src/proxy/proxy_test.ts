import assert from "node:assert/strict";
import { RouteTable, type Upstream } from "../routes/route_table.ts";
import { createProxy, type ProxyOptions } from "./proxy.ts";
import { RequestContext, workerContext } from "./context.ts";
import type { ErrorHandler, ProxyFailure } from "./_errors.ts";
import { HOP_BY_HOP } from "./_headers.ts";
import { type LogRecord, observeLogger, silentLogger } from "../log/logger.ts";
import { waitFor } from "../../tests/_helpers.ts";
import { rawText } from "../../tests/_workers.ts";

/** An upstream pointing at one origin, counting what is in flight. */
class TestUpstream implements Upstream {
  inFlight = 0;
  acquired = 0;
  constructor(
    readonly name: string,
    readonly route: string,
    public origin: string | undefined,
    readonly writeTimeoutMs = 5_000,
  ) {}
  acquire() {
    if (this.origin === undefined) return undefined;
    this.inFlight++;
    this.acquired++;
    let released = false;
    return {
      origin: this.origin,
      release: () => {
        assert.equal(released, false, "release() called twice");
        released = true;
        this.inFlight--;
      },
    };
  }
  retryAfterSeconds() {
    return 7;
  }
}

interface Stack extends AsyncDisposable {
  /** Base URL of the proxy. */
  url: string;
  port: number;
  table: RouteTable;
}

function serve(handler: Deno.ServeHandler<Deno.NetAddr>): Deno.HttpServer<
  Deno.NetAddr
> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    handler,
  );
}

/** Starts the proxy behind a real Deno.serve with the given upstreams. */
function startProxy(
  upstreams: Upstream[],
  options: ProxyOptions = {},
): Stack {
  const table = new RouteTable();
  table.set(upstreams);
  const proxy = createProxy(table, options);
  const server = serve(proxy);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    port: server.addr.port,
    table,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      proxy.close();
    },
  };
}

function origin(server: Deno.HttpServer<Deno.NetAddr>): string {
  return `http://127.0.0.1:${server.addr.port}`;
}

/** Resolves once the proxy released every instance it took from `up` (bounded). */
async function released(up: TestUpstream): Promise<void> {
  await waitFor(
    () => up.inFlight === 0,
    2_000,
    `${up.name}'s requests in flight to drop to 0`,
  );
}

/** Sends a raw HTTP/1.1 request and returns the whole raw answer (connection closed). */
async function rawRequest(port: number, head: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(head));
  const bytes = await new Response(conn.readable).arrayBuffer();
  return new TextDecoder().decode(bytes);
}

/** The head of a raw HTTP answer as lower-cased `name: value` lines. */
function headLines(raw: string): string[] {
  return raw.split("\r\n\r\n")[0]!.split("\r\n").slice(1).map((l) =>
    l.toLowerCase()
  );
}

/**
 * A raw TCP worker (Deno.serve would not send what these tests need): for
 * each request it reads, `reply(path, conn)` writes the answer, and may close
 * the connection. `await using` stops it.
 */
function rawWorker(
  reply: (path: string, conn: Deno.Conn) => Promise<void>,
): { origin: string } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(8192);
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          const head = new TextDecoder().decode(buf.subarray(0, n));
          await reply(head.split(" ")[1] ?? "", conn);
        }
        conn.close();
      })().catch(() => {}); // closed by `reply`, or by the proxy
    }
  })().catch(() => {});
  const { port } = listener.addr as Deno.NetAddr;
  return {
    origin: `http://127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving;
    },
  };
}

/** A backend answering with what it received. */
function echoBackend(tag: string) {
  return serve((req) => {
    const url = req.url;
    const start = url.indexOf("/", url.indexOf("//") + 2);
    return Response.json({
      tag,
      method: req.method,
      target: url.slice(start),
      headers: Object.fromEntries(req.headers),
    });
  });
}

{
  Deno.test(`proxy routes by longest prefix on segment boundaries and keeps path and query`, async () => {
    await using index = echoBackend("index");
    await using api = echoBackend("api");
    await using users = echoBackend("users");
    const ups = [
      new TestUpstream("index", "/", origin(index)),
      new TestUpstream("api", "/api", origin(api)),
      new TestUpstream("api_users", "/api/users", origin(users)),
    ];
    await using proxy = startProxy(ups);
    const cases: [string, string][] = [
      ["/", "index"],
      ["/apix", "index"],
      ["/api", "api"],
      ["/api/", "api"],
      ["/api/usersx/1", "api"],
      ["/api/users", "users"],
      ["/api/users/7?x=1&y=%2F&z", "users"],
      ["/api/a%20b/c?q=%E2%9C%93#frag", "api"],
    ];
    for (const [path, tag] of cases) {
      const res = await fetch(proxy.url + path);
      const body = await res.json();
      assert.equal(res.status, 200, path);
      assert.equal(body.tag, tag, path);
      assert.equal(body.target, path.split("#")[0], path);
    }
    for (const up of ups) assert.equal(up.inFlight, 0);
  });

  Deno.test(`proxy streams a 5 MiB POST body to the worker intact`, async () => {
    await using backend = serve(async (req) => {
      const bytes = await req.bytes();
      const hash = await crypto.subtle.digest("SHA-256", bytes);
      return Response.json({
        length: bytes.length,
        sha256: Array.from(new Uint8Array(hash)).join(","),
      });
    });
    const up = new TestUpstream("upload", "/", origin(backend));
    await using proxy = startProxy([up]);
    const payload = new Uint8Array(5 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 65536) {
      crypto.getRandomValues(payload.subarray(i, i + 65536));
    }
    const expected = new Uint8Array(
      await crypto.subtle.digest("SHA-256", payload),
    );
    // A stream body so the proxy cannot see a length up front.
    const res = await fetch(proxy.url + "/up", {
      method: "POST",
      body: new Blob([payload]).stream(),
    });
    const body = await res.json();
    assert.equal(body.length, payload.length);
    assert.equal(body.sha256, Array.from(expected).join(","));
    assert.equal(up.inFlight, 0);
  });

  Deno.test(`proxy drops hop-by-hop request headers and the ones Connection names`, async () => {
    await using backend = echoBackend("b");
    await using proxy = startProxy([
      new TestUpstream("b", "/", origin(backend)),
    ]);
    const raw = await rawRequest(
      proxy.port,
      "GET /x HTTP/1.1\r\nHost: example.test:8080\r\n" +
        "Connection: close, X-Hop-Secret\r\nX-Hop-Secret: 1\r\n" +
        "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n" +
        "Trailer: X-Sum\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\n",
    );
    const seen = JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)).headers;
    for (const name of [...HOP_BY_HOP, "x-hop-secret"]) {
      assert.equal(seen[name], undefined, name);
    }
    assert.equal(seen["x-kept"], "yes");
    assert.equal(seen["host"], "example.test:8080");
  });

  Deno.test("proxy passes header bytes 0x80-0xFF unchanged (never re-encoded as UTF-8)", async () => {
    await using backend = echoBackend("b");
    await using proxy = startProxy([
      new TestUpstream("b", "/", origin(backend)),
    ]);
    // "café" sent as UTF-8 bytes reads as the byte string "cafÃ©" on both ends.
    const raw = await rawRequest(
      proxy.port,
      "GET /x HTTP/1.1\r\nHost: t.test\r\nX-Name: café\r\nConnection: close\r\n\r\n",
    );
    const seen = JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)).headers;
    assert.equal(seen["x-name"], "caf\u00c3\u00a9");
  });

  Deno.test(`proxy drops hop-by-hop response headers and keeps every Set-Cookie; the Date is the proxy's`, async () => {
    // A raw backend: Deno.serve would not let a handler send these fields.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const answered = (async () => {
      {
        const conn = await listener.accept();
        const buf = new Uint8Array(8192);
        await conn.read(buf);
        await conn.write(
          new TextEncoder().encode(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" +
              "Connection: keep-alive, X-Internal\r\nX-Internal: secret\r\n" +
              "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
              "Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; HttpOnly\r\n" +
              "X-Custom: kept\r\nDate: Mon, 01 Jan 1990 00:00:00 GMT\r\n" +
              "X-Request-Id: the-workers-own\r\n" +
              "Content-Length: 5\r\n\r\nhello",
          ),
        );
        conn.close();
      }
    })();
    const port = (listener.addr as Deno.NetAddr).port;
    const up = new TestUpstream("raw", "/", `http://127.0.0.1:${port}`);
    await using proxy = startProxy([up]);
    const res = await fetch(proxy.url + "/");
    assert.equal(await res.text(), "hello");
    assert.deepEqual(res.headers.getSetCookie(), [
      "a=1; Path=/",
      "b=2; HttpOnly",
    ]);
    assert.equal(res.headers.get("x-custom"), "kept");
    // A worker that sends an id back is passed on as it sent it.
    assert.equal(res.headers.get("x-request-id"), "the-workers-own");
    assert.equal(res.headers.get("x-internal"), null);
    assert.equal(res.headers.get("keep-alive"), null);
    assert.equal(res.headers.get("proxy-connection"), null);
    // As nginx: the worker's Date is replaced by the proxy's own.
    const date = Date.parse(res.headers.get("date") ?? "");
    assert.ok(Math.abs(date - Date.now()) < 60_000, res.headers.get("date")!);
    await answered;
    listener.close();
    assert.equal(up.inFlight, 0);
  });

  Deno.test(`proxy sets forwarding headers, keeps Host and adds X-Request-Id to the request`, async (t) => {
    await using backend = echoBackend("b");
    const up = new TestUpstream("b", "/", origin(backend));

    await t.step(
      "from a trusted peer X-Forwarded-For is appended to",
      async () => {
        await using proxy = startProxy([up]);
        const raw = await rawRequest(
          proxy.port,
          "GET /f HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-For: 203.0.113.9\r\n" +
            "X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
        );
        const seen = JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)).headers;
        assert.equal(seen["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert.equal(seen["x-forwarded-proto"], "https");
        assert.equal(seen["x-forwarded-host"], "example.test");
        assert.equal(seen["host"], "example.test");
        assert.match(seen["x-request-id"], /^[0-9a-f-]{36}$/);
        const responseId = headLines(raw).find((l) =>
          l.startsWith("x-request-id:")
        );
        // Sent to the worker, not added to its answer (as nginx, Envoy).
        assert.equal(responseId, undefined);
      },
    );

    await t.step(
      "from an untrusted peer inbound forwarding headers are replaced",
      async () => {
        await using proxy = startProxy([up], { trustedProxies: [] });
        const res = await fetch(proxy.url + "/f", {
          headers: {
            "x-forwarded-for": "203.0.113.9",
            "x-forwarded-host": "evil.test",
            "x-forwarded-proto": "https",
            "forwarded": "for=203.0.113.9",
            "x-request-id": "req-42",
          },
        });
        const seen = (await res.json()).headers;
        assert.equal(seen["x-forwarded-for"], "127.0.0.1");
        assert.equal(seen["x-forwarded-host"], new URL(proxy.url).host);
        assert.equal(seen["x-forwarded-proto"], "http");
        assert.equal(seen["forwarded"], undefined);
        assert.equal(seen["x-request-id"], "req-42");
        assert.equal(res.headers.get("x-request-id"), null);
      },
    );
    assert.equal(up.inFlight, 0);
  });

  Deno.test(`proxy passes a gzip response through byte for byte with its Content-Encoding`, async () => {
    const original = "tqserver ".repeat(5_000);
    const gz = new Uint8Array(
      await new Response(
        new Blob([original]).stream().pipeThrough(
          new CompressionStream("gzip"),
        ),
      ).arrayBuffer(),
    );
    await using backend = serve(() =>
      new Response(gz, {
        headers: { "content-encoding": "gzip", "content-type": "text/plain" },
      })
    );
    const up = new TestUpstream("gz", "/", origin(backend));
    await using proxy = startProxy([up]);

    // `identity` keeps this test's fetch from decoding: these are the wire bytes.
    const raw = await fetch(proxy.url + "/", {
      headers: { "accept-encoding": "identity" },
    });
    assert.equal(raw.headers.get("content-encoding"), "gzip");
    const bytes = new Uint8Array(await raw.arrayBuffer());
    assert.deepEqual(bytes, gz);
    // A browser-like client decodes once per the label and gets the original.
    const decoded = await fetch(proxy.url + "/", {
      headers: { "accept-encoding": "gzip, deflate, br" },
    });
    assert.equal(await decoded.text(), original);
    assert.equal(up.inFlight, 0);
  });

  Deno.test(`proxy does not follow redirects`, async () => {
    await using backend = serve(() =>
      new Response(null, { status: 302, headers: { location: "/elsewhere" } })
    );
    await using proxy = startProxy([
      new TestUpstream("r", "/", origin(backend)),
    ]);
    const res = await fetch(proxy.url + "/go", { redirect: "manual" });
    await res.body?.cancel();
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "/elsewhere");
  });

  Deno.test(`proxy answers errors as JSON or HTML: 404, 502, 503 with Retry-After`, async (t) => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closedPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const down = new TestUpstream(
      "down",
      "/down",
      `http://127.0.0.1:${closedPort}`,
    );
    const none = new TestUpstream("none", "/none", undefined);
    // No retry window: a closed port answers 502 at once.
    await using proxy = startProxy([down, none], { retryWindowMs: 0 });

    await t.step("no route is 404", async () => {
      const res = await fetch(proxy.url + "/nowhere");
      assert.equal(res.status, 404);
      const body = await res.json();
      assert.equal(body.status, 404);
      assert.equal(typeof body.error, "string");
      assert.equal(body.request_id, res.headers.get("x-request-id"));
    });

    await t.step("a closed port is 502", async () => {
      const res = await fetch(proxy.url + "/down/x");
      assert.equal(res.status, 502);
      assert.equal((await res.json()).status, 502);
      assert.equal(down.inFlight, 0);
    });

    await t.step("no healthy instance is 503 with Retry-After", async () => {
      const res = await fetch(proxy.url + "/none", {
        headers: { accept: "text/html,application/xhtml+xml" },
      });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get("retry-after"), "7");
      assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
      assert.match(await res.text(), /503 Service Unavailable/);
    });
  });

  Deno.test(`proxy answers 504 when headers are late but never cuts a slow stream`, async (t) => {
    const encoder = new TextEncoder();
    const late = Promise.withResolvers<void>();
    await using backend = serve(async (req) => {
      if (req.url.endsWith("/late")) {
        // Answers once the test saw its 504 (`late`); the timer only bounds
        // the wait should the test fail before releasing it.
        await Promise.race([
          late.promise,
          new Promise((r) => setTimeout(r, 2000)),
        ]);
        return new Response("too late");
      }
      // SSE: one event every 80 ms, 6 events, far past the 150 ms timeout.
      let n = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            return new Promise((resolve) => {
              timer = setTimeout(() => {
                if (n === 6) controller.close();
                else controller.enqueue(encoder.encode(`data: ${n++}\n\n`));
                resolve();
              }, 80);
            });
          },
          cancel() {
            clearTimeout(timer);
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    });
    const up = new TestUpstream("slow", "/", origin(backend), 150);
    await using proxy = startProxy([up]);

    await t.step("late headers give 504 within the timeout", async () => {
      const started = Date.now();
      const res = await fetch(proxy.url + "/late");
      assert.equal(res.status, 504);
      await res.body?.cancel();
      assert.ok(Date.now() - started < 1500);
      late.resolve();
      await released(up);
    });

    await t.step(
      "an SSE body slower than the timeout arrives whole",
      async () => {
        const res = await fetch(proxy.url + "/events");
        assert.equal(res.status, 200);
        assert.equal(up.inFlight, 1, "in flight while the body streams");
        const text = await res.text();
        assert.equal(text.match(/^data: /gm)?.length, 6);
        await released(up);
      },
    );
  });

  Deno.test(`proxy aborts the worker request when the client goes away`, async (t) => {
    const beforeHeaders = Promise.withResolvers<void>();
    const midBody = Promise.withResolvers<void>();
    await using backend = serve(async (req) => {
      if (req.url.endsWith("/wait")) {
        req.signal.addEventListener("abort", () => beforeHeaders.resolve());
        // Waits for the abort under test; the timer only bounds the wait
        // should the abort never come (the test then fails on its absence).
        await Promise.race([
          beforeHeaders.promise,
          new Promise((r) => setTimeout(r, 3000)),
        ]);
        return new Response("late");
      }
      let timer: ReturnType<typeof setInterval> | undefined;
      return new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            timer = setInterval(
              () => controller.enqueue(new TextEncoder().encode("tick\n")),
              20,
            );
          },
          cancel() {
            clearInterval(timer);
            midBody.resolve();
          },
        }),
      );
    });
    const up = new TestUpstream("abort", "/", origin(backend));
    await using proxy = startProxy([up]);
    const timeout = (ms: number) =>
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("Upstream was not aborted")), ms)
      );

    await t.step("before the response headers", async () => {
      const controller = new AbortController();
      const pending = fetch(proxy.url + "/wait", { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(pending);
      await Promise.race([beforeHeaders.promise, timeout(2000)]);
      await released(up);
    });

    await t.step("while the body streams", async () => {
      const res = await fetch(proxy.url + "/stream");
      const reader = res.body!.getReader();
      await reader.read();
      await reader.cancel();
      await Promise.race([midBody.promise, timeout(2000)]);
      await released(up);
    });
  });

  Deno.test(`proxy relays a WebSocket with its subprotocol both ways`, async () => {
    await using backend = serve((req) => {
      if (req.headers.get("upgrade") !== "websocket") {
        return new Response("no", { status: 426 });
      }
      const { socket, response } = Deno.upgradeWebSocket(req, {
        protocol: "chat.v2",
      });
      socket.onopen = () => socket.send("hello from worker");
      socket.onmessage = (e) => socket.send(`echo:${e.data}`);
      return response;
    });
    const up = new TestUpstream("ws", "/ws", origin(backend));
    await using proxy = startProxy([up]);
    const ws = new WebSocket(proxy.url.replace("http", "ws") + "/ws/room", [
      "chat.v1",
      "chat.v2",
    ]);
    const messages: string[] = [];
    const closed = new Promise<void>((resolve) => ws.onclose = () => resolve());
    await new Promise<void>((resolve, reject) => {
      ws.onerror = () => reject(new Error("WebSocket failed"));
      ws.onmessage = (e) => {
        messages.push(String(e.data));
        if (messages.length === 1) ws.send("ping");
        if (messages.length === 2) resolve();
      };
    });
    assert.equal(ws.protocol, "chat.v2");
    assert.deepEqual(messages, ["hello from worker", "echo:ping"]);
    assert.equal(up.inFlight, 1, "an open WebSocket counts as in flight");
    ws.close();
    await closed;
    await released(up);
  });
}

Deno.test("proxy does not count a slow upload against the response-header timeout", async () => {
  await using backend = serve(async (req) => {
    const bytes = await req.bytes();
    return new Response(String(bytes.length));
  });
  const up = new TestUpstream("upload", "/", origin(backend), 150);
  await using proxy = startProxy([up]);
  // Five chunks 70 ms apart: the upload alone outlasts the 150 ms timeout.
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      // The pace of the upload is the behaviour under test, not a wait.
      await new Promise((r) => setTimeout(r, 70));
      if (sent === 5) return controller.close();
      sent++;
      controller.enqueue(new Uint8Array(1000));
    },
  });
  const res = await fetch(proxy.url + "/", { method: "POST", body });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "5000");
  await released(up);
});

Deno.test("proxy releases at the end of the body when the server gives no completed promise", async () => {
  await using backend = serve(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("part one, "));
          setTimeout(() => {
            controller.enqueue(new TextEncoder().encode("part two"));
            controller.close();
          }, 50);
        },
      }),
    )
  );
  const up = new TestUpstream("b", "/", origin(backend));
  const table = new RouteTable();
  table.set([up]);
  const proxy = createProxy(table);
  try {
    // A caller that is not Deno.serve: `info` without `completed`.
    const info = {
      remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    } as unknown as Deno.ServeHandlerInfo<Deno.NetAddr>;
    const res = await proxy(
      new Request("http://example.test/s", {
        headers: { host: "example.test" },
      }),
      info,
    );
    assert.equal(up.inFlight, 1, "still in flight while the body is unread");
    assert.equal(await res.text(), "part one, part two");
    assert.equal(up.inFlight, 0);
  } finally {
    proxy.close();
  }
});

Deno.test("proxy resends a GET on a new connection when the worker closed the idle one", async () => {
  // A worker that closes each keep-alive connection 20 ms after answering.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  let closed = 0;
  const serving = (async () => {
    for (let i = 0; i < 2; i++) {
      const conn = await listener.accept();
      connections++;
      await conn.read(new Uint8Array(8192));
      await conn.write(
        new TextEncoder().encode(
          `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`,
        ),
      );
      // The worker's idle close comes after the answer, as a keep-alive
      // timeout would: part of the behaviour under test.
      await new Promise((r) => setTimeout(r, 20));
      conn.close();
      closed++;
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  const up = new TestUpstream("idle", "/", `http://127.0.0.1:${port}`);
  await using proxy = startProxy([up]);
  for (let i = 0; i < 2; i++) {
    const res = await fetch(proxy.url + "/");
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "ok");
    await waitFor(
      () => closed === i + 1,
      2_000,
      `the worker to close connection ${i + 1}`,
    );
  }
  await serving;
  listener.close();
  assert.equal(connections, 2);
});

Deno.test("proxy waits for a healthy instance within the retry window, then answers 503", async (t) => {
  await using backend = echoBackend("late");
  const up = new TestUpstream("late", "/", undefined);
  await using proxy = startProxy([up], { retryWindowMs: 400 });
  await t.step(
    "an instance that comes up in time serves the request",
    async () => {
      setTimeout(() => up.origin = origin(backend), 150);
      const res = await fetch(proxy.url + "/x");
      assert.equal(res.status, 200);
      assert.equal((await res.json()).tag, "late");
    },
  );
  await t.step("none in time: 503 after the window, not at once", async () => {
    up.origin = undefined;
    const started = performance.now();
    const res = await fetch(proxy.url + "/x");
    await res.body?.cancel();
    const ms = performance.now() - started;
    assert.equal(res.status, 503);
    assert.ok(ms >= 350 && ms < 3000, `answered after ${Math.round(ms)} ms`);
  });
  assert.equal(up.inFlight, 0);
});

Deno.test("proxy reconfigure() applies new body limits to the next requests", async () => {
  await using backend = echoBackend("b");
  const table = new RouteTable();
  table.set([new TestUpstream("b", "/", origin(backend))]);
  const proxy = createProxy(table);
  await using server = serve(proxy);
  const url = `http://127.0.0.1:${server.addr.port}/up`;
  try {
    const before = await fetch(url, { method: "POST", body: "x".repeat(20) });
    await before.body?.cancel();
    assert.equal(before.status, 200);
    proxy.reconfigure({ maxBodyBytes: 10 });
    const after = await fetch(url, { method: "POST", body: "x".repeat(20) });
    assert.equal(after.status, 413);
    assert.match((await after.json()).error, /larger than 10 bytes/);
  } finally {
    proxy.close();
  }
});

/**
 * Sends `head` on a new connection and returns the raw text of the one
 * Content-Length answer, without waiting for the close (Deno.serve keeps a
 * socket open while the client holds an unfinished body). At most 5 s.
 */
function oneAnswer(port: number, head: string): Promise<string> {
  return rawText(port, head, { ms: 5_000, untilAnswer: true });
}

Deno.test("proxy's own 408, 413 and 400 carry Connection: close once", async (t) => {
  const records: LogRecord[] = [];
  await using backend = echoBackend("b");
  await using proxy = startProxy(
    [new TestUpstream("b", "/", origin(backend))],
    {
      readTimeoutMs: 200,
      maxBodyBytes: 1000,
      requestBufferBytes: 500,
      logger: observeLogger(silentLogger, (r) => records.push(r)),
    },
  );
  const closes = (raw: string) =>
    headLines(raw).filter((l) => l.startsWith("connection:"));
  await t.step("a stalled upload: 408", async () => {
    const raw = await oneAnswer(
      proxy.port,
      "POST /up HTTP/1.1\r\nHost: t.test\r\nContent-Length: 100\r\n\r\n0123456789",
    );
    assert.match(raw, /^HTTP\/1\.1 408 /);
    assert.match(raw, /stalled for 200 ms/);
    assert.deepEqual(closes(raw), ["connection: close"]);
    // The log blames the client, at debug level (any client can cause it).
    assert.deepEqual(
      records.map((r) => [r.level, r.msg, r.fields.client]),
      [["debug", "client timed out", "127.0.0.1"]],
    );
  });
  await t.step("a Content-Length over max_body_bytes: 413", async () => {
    const raw = await oneAnswer(
      proxy.port,
      "POST /up HTTP/1.1\r\nHost: t.test\r\nContent-Length: 5000000\r\n\r\n0123456789",
    );
    assert.match(raw, /^HTTP\/1\.1 413 /);
    assert.match(raw, /larger than 1000 bytes/);
    assert.deepEqual(closes(raw), ["connection: close"]);
  });
  // Not terminated: the body is unfinished when the 413 leaves.
  const chunk = (n: number, c: string) =>
    `${n.toString(16)}\r\n${c.repeat(n)}\r\n`;
  const chunked: [string, string][] = [
    ["one chunk over the limit, refused before the worker", chunk(1200, "a")],
    [
      "past request_buffer_bytes, refused mid-stream",
      chunk(768, "a") + chunk(800, "b"),
    ],
  ];
  for (const [name, body] of chunked) {
    await t.step(
      `a chunked body over max_body_bytes, ${name}: 413`,
      async () => {
        const raw = await oneAnswer(
          proxy.port,
          "POST /up HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
            body,
        );
        assert.match(raw, /^HTTP\/1\.1 413 /);
        assert.deepEqual(closes(raw), ["connection: close"]);
      },
    );
  }
  await t.step("a GET with an unfinished body: 400", async () => {
    const raw = await oneAnswer(
      proxy.port,
      "GET /up HTTP/1.1\r\nHost: t.test\r\nContent-Length: 40\r\n\r\n0123456789",
    );
    assert.match(raw, /^HTTP\/1\.1 400 /);
    assert.deepEqual(closes(raw), ["connection: close"]);
  });
  await t.step("a GET with a chunked body: 400", async () => {
    const raw = await oneAnswer(
      proxy.port,
      "GET /up HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "5\r\nhello\r\n0\r\n\r\n",
    );
    assert.match(raw, /^HTTP\/1\.1 400 /);
  });
});

Deno.test("proxy answers a body over max_body_bytes 413 and the worker sees no request", async (t) => {
  let seen = 0;
  await using backend = serve(async (req) => {
    seen++;
    await req.body?.cancel();
    return new Response("reached");
  });
  await using proxy = startProxy(
    [new TestUpstream("b", "/", origin(backend))],
    { maxBodyBytes: 1000, requestBufferBytes: 4096 },
  );
  await t.step("a Content-Length over the limit", async () => {
    const res = await fetch(proxy.url + "/up", {
      method: "POST",
      body: "x".repeat(1001),
    });
    assert.equal(res.status, 413);
    assert.match((await res.json()).error, /larger than 1000 bytes/);
  });
  for (const size of [1001, 10_000]) {
    await t.step(`a chunked body of ${size} bytes`, async () => {
      const bytes = new TextEncoder().encode("y".repeat(size));
      const res = await fetch(proxy.url + "/up", {
        method: "POST",
        body: new ReadableStream({
          start(controller) {
            for (let at = 0; at < bytes.length; at += 500) {
              controller.enqueue(bytes.subarray(at, at + 500));
            }
            controller.close();
          },
        }),
      });
      assert.equal(res.status, 413);
      assert.match((await res.json()).error, /larger than 1000 bytes/);
    });
  }
  await t.step("a body at the limit passes", async () => {
    const res = await fetch(proxy.url + "/up", {
      method: "POST",
      body: "x".repeat(1000),
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "reached");
  });
  assert.equal(seen, 1, "only the body within the limit reached the worker");
});

Deno.test("proxy keeps idle worker connections for the upstream's idleTimeoutMs (workers.paths idle_timeout_seconds)", async () => {
  // Each distinct client port the backend sees is one proxy connection.
  const ports: Record<string, Set<number>> = {
    short: new Set(),
    long: new Set(),
  };
  await using backend = serve((req, info) => {
    ports[new URL(req.url).pathname.slice(1)]!.add(info.remoteAddr.port);
    return new Response("ok");
  });
  const short = Object.assign(
    new TestUpstream("short", "/short", origin(backend)),
    { idleTimeoutMs: 100 },
  );
  const long = new TestUpstream("long", "/long", origin(backend));
  await using proxy = startProxy([short, long], { idleTimeoutMs: 30_000 });
  for (const name of ["short", "long"]) {
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${proxy.url}/${name}`);
      assert.equal(await res.text(), "ok");
      // Idle time is what is tested: past the short upstream's 100 ms,
      // within the proxy's 30 s. Nothing to wait for but the clock.
      if (i === 0) await new Promise((r) => setTimeout(r, 400));
    }
  }
  assert.equal(ports.short!.size, 2, "idle past 100 ms: a new connection");
  assert.equal(ports.long!.size, 1, "within 30 s: the same connection");
});

Deno.test({
  name:
    "proxy answers 504 in time when the worker's accept queue is full (connect bounded by write_timeout)",
  ignore: (() => {
    try {
      return !new Deno.Command("python3", { args: ["--version"] }).outputSync()
        .success;
    } catch {
      return true;
    }
  })(),
  async fn() {
    // A listener with a backlog of 0 that never accepts: once one
    // connection waits in its queue, a new connect hangs on SYN retries.
    const py = new Deno.Command("python3", {
      args: [
        "-c",
        "import socket, sys\n" +
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)\n" +
        "print(s.getsockname()[1], flush=True)\n" +
        "sys.stdin.read()\n",
      ],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const lines = py.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const fills: Deno.TcpConn[] = [];
    try {
      const port = Number((await lines.read()).value!.trim());
      fills.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      const up = new TestUpstream("full", "/", `http://127.0.0.1:${port}`, 500);
      await using proxy = startProxy([up]);
      const started = performance.now();
      const res = await fetch(proxy.url + "/x");
      const ms = performance.now() - started;
      assert.equal(res.status, 504);
      assert.match((await res.json()).error, /did not answer within 500 ms/);
      assert.ok(ms >= 450 && ms < 5_000, `answered after ${Math.round(ms)} ms`);
      assert.equal(up.inFlight, 0);
    } finally {
      for (const c of fills) c.close();
      await py.stdin.close();
      await py.status;
      await lines.cancel();
    }
  },
});

Deno.test("proxy resends a GET, once, whose response was cut short before the client saw any of it; a POST gets 502", async (t) => {
  // "alternate": a head cut short and the close (a worker killed mid-answer),
  // then a whole answer on the next connection; "cut": always cut short.
  let mode: "alternate" | "cut" = "alternate";
  let whole = false;
  let requests = 0;
  await using worker = rawWorker(async (_path, conn) => {
    requests++;
    const reply = whole
      ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
      : "HTTP/1.1 200 OK\r\nContent-Le";
    whole = mode === "alternate" && !whole;
    await conn.write(new TextEncoder().encode(reply));
    conn.close();
  });
  const up = new TestUpstream("cut", "/", worker.origin);
  await using proxy = startProxy([up]);
  await t.step(
    "GET: the cut answer is resent and the client gets 200",
    async () => {
      const res = await fetch(proxy.url + "/");
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "ok");
      assert.equal(requests, 2);
    },
  );
  await t.step("POST: not idempotent, 502", async () => {
    whole = false;
    const res = await fetch(proxy.url + "/", { method: "POST", body: "x" });
    await res.body?.cancel();
    assert.equal(res.status, 502);
    assert.equal(requests, 3);
  });
  await t.step(
    "a worker that cuts every answer: one resend, then 502",
    async () => {
      mode = "cut";
      whole = false;
      const before = requests;
      const res = await fetch(proxy.url + "/");
      await res.body?.cancel();
      assert.equal(res.status, 502);
      assert.equal(
        requests - before,
        2,
        "tried twice, not for the whole window",
      );
    },
  );
  assert.equal(up.inFlight, 0);
});

Deno.test("proxy answers 502 for a worker header Fetch refuses (a NUL or CR in its value), and the next request is served", async () => {
  await using worker = rawWorker(async (path, conn) => {
    const extra = path === "/nul"
      ? "X-Bad: a\0b\r\n"
      : path === "/cr"
      ? "X-Bad: a\rb\r\n"
      : "";
    await conn.write(
      new TextEncoder().encode(
        `HTTP/1.1 200 OK\r\n${extra}Content-Length: 2\r\n\r\nok`,
      ),
    );
  });
  const up = new TestUpstream("bad", "/", worker.origin);
  const records: LogRecord[] = [];
  await using proxy = startProxy([up], {
    logger: observeLogger(silentLogger, (r) => records.push(r)),
  });
  for (const path of ["/nul", "/cr"]) {
    const res = await fetch(proxy.url + path);
    const text = await res.text();
    assert.equal(res.status, 502, `${path}: ${text}`);
  }
  const logged = JSON.stringify(records);
  assert.equal(logged.match(/Bad header value/g)?.length, 2, logged);
  const res = await fetch(proxy.url + "/fine");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok");
  assert.equal(up.inFlight, 0);
});

Deno.test("proxy never passes on a Content-Length that Transfer-Encoding overrides", async (t) => {
  // "/whole": the chunked body comes with the head; "/later": its end 50 ms later.
  await using worker = rawWorker(async (path, conn) => {
    const head =
      "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n";
    const encoder = new TextEncoder();
    if (path === "/whole") {
      await conn.write(encoder.encode(head + "3\r\nabc\r\n0\r\n\r\n"));
    } else {
      await conn.write(encoder.encode(head + "3\r\nabc\r\n"));
      // The end in a later packet is the case under test, not a wait.
      await new Promise((r) => setTimeout(r, 50));
      await conn.write(encoder.encode("0\r\n\r\n"));
    }
    conn.close();
  });
  const up = new TestUpstream("both", "/", worker.origin);
  await using proxy = startProxy([up]);
  for (const [path, length] of [["/whole", "3"], ["/later", null]]) {
    await t.step(path!, async () => {
      const raw = await rawRequest(
        proxy.port,
        `GET ${path} HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n`,
      );
      const lengths = headLines(raw).filter((l) =>
        l.startsWith("content-length:")
      );
      assert.deepEqual(
        lengths,
        length === null ? [] : [`content-length: ${length}`],
        raw,
      );
      assert.ok(raw.includes("abc"), raw);
    });
  }
  assert.equal(up.inFlight, 0);
});

Deno.test("RequestContext.headersOf() reads a proxied answer's headers as Headers.get would, and nothing else's", async () => {
  await using worker = rawWorker(async (_path, conn) => {
    await conn.write(
      new TextEncoder().encode(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-cache\r\n" +
          "Cache-Control: no-transform\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
      ),
    );
    conn.close();
  });
  const up = new TestUpstream("h", "/", worker.origin);
  const table = new RouteTable();
  table.set([up]);
  const proxy = createProxy(table);
  try {
    const info = {
      remoteAddr: { hostname: "127.0.0.1", port: 1, transport: "tcp" },
      completed: Promise.resolve(),
    } as Deno.ServeHandlerInfo<Deno.NetAddr>;
    const req = new Request("http://t.test/", { headers: { host: "t.test" } });
    const ctx = workerContext(req, info, { routes: table });
    const res = await proxy(req, info, ctx);
    const header = ctx.headersOf(res);
    assert.ok(header, "a reader for the proxy's own answer");
    for (const name of ["content-type", "cache-control", "x-absent"]) {
      assert.equal(header(name), res.headers.get(name), name);
    }
    assert.equal(header("cache-control"), "no-cache, no-transform");
    // A body of bytes: its length is read from the bytes, and not passed on
    // as a header for the Response to check (Deno.serve writes it).
    assert.equal(header("content-length"), "2");
    // Only what the client needs goes through Response's checks: no length,
    // no hop-by-hop field, no id the worker did not send.
    assert.deepEqual([...res.headers.keys()], [
      "cache-control",
      "content-type",
    ]);
    assert.equal(await res.text(), "ok");
    assert.equal(ctx.headersOf(new Response("x")), undefined);
    assert.equal(new RequestContext(info).headersOf(res), undefined);
  } finally {
    proxy.close();
  }
});

Deno.test("proxy answers a request without Host 400, routed or not, and the worker sees nothing", async () => {
  let seen = 0;
  const worker = serve(() => {
    seen++;
    return new Response("worker");
  });
  await using stack = startProxy([
    new TestUpstream("api", "/api", origin(worker)),
  ]);
  try {
    for (const path of ["/api/x", "/elsewhere"]) {
      const raw = await rawRequest(
        stack.port,
        `GET ${path} HTTP/1.1\r\nConnection: close\r\n\r\n`,
      );
      assert.match(raw, /^HTTP\/1\.1 400 /, `${path}: ${raw}`);
      assert.match(raw, /no Host header/, path);
    }
    const raw = await rawRequest(
      stack.port,
      "GET /api/x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    );
    assert.match(raw, /^HTTP\/1\.1 200 /);
    assert.equal(seen, 1, "only the request with a Host reached the worker");
  } finally {
    await worker.shutdown();
  }
});

/**
 * Sends a chunked request head with `Expect: 100-continue`, waits for the
 * 100 (Deno.serve sends it when the proxy first reads the body, so the head
 * is ours by then), then `body`; returns what came after the 100.
 */
function afterContinue(port: number, body: string): Promise<string> {
  return rawText(port, async (conn) => {
    await conn.write(new TextEncoder().encode(
      "POST /up HTTP/1.1\r\nHost: t.test\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    ));
    const buf = new Uint8Array(8192);
    const n = await conn.read(buf);
    assert.match(
      new TextDecoder().decode(buf.subarray(0, n ?? 0)),
      /^HTTP\/1\.1 100 Continue\r\n\r\n$/,
    );
    await conn.write(new TextEncoder().encode(body));
  }, { ms: 5_000, untilAnswer: true });
}

Deno.test("malformed chunked framing after the head is 400 with a short body and a debug line", async (t) => {
  const records: LogRecord[] = [];
  await using backend = echoBackend("b");
  await using proxy = startProxy(
    [new TestUpstream("b", "/", origin(backend))],
    { logger: observeLogger(silentLogger, (r) => records.push(r)) },
  );
  const cases: [string, string][] = [
    ["a size that is not hex (zz)", "zz\r\nhello\r\n0\r\n\r\n"],
    ["a 0x prefix (0x5)", "0x5\r\nhello\r\n0\r\n\r\n"],
    ["a size over 64 bits", "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"],
    ["data longer than its size", "3\r\nhello\r\n0\r\n\r\n"],
    ["a bare LF after the data", "5\r\nhello\n0\r\n\r\n"],
  ];
  for (const [name, body] of cases) {
    await t.step(name, async () => {
      records.length = 0;
      const raw = await afterContinue(proxy.port, body);
      assert.match(raw, /^HTTP\/1\.1 400 /);
      assert.match(raw, /Malformed chunked request body/);
      assert.ok(raw.length < 1000, raw);
      assert.deepEqual(
        records.map((r) => [r.level, r.msg]),
        [["debug", "malformed request body"]],
      );
    });
  }
});

Deno.test("pinned: an all-bare-LF chunked body leaves Deno.serve waiting for more, so it ends as 408", async () => {
  // Deno.serve's parser takes "5\nhello\n0\n\n" as unfinished and hands
  // over no error: the read timeout answers it (docs/contract.md). A change
  // here means Deno.serve decides it differently now.
  await using backend = echoBackend("b");
  await using proxy = startProxy(
    [new TestUpstream("b", "/", origin(backend))],
    { readTimeoutMs: 300 },
  );
  const raw = await afterContinue(proxy.port, "5\nhello\n0\n\n");
  assert.match(raw, /^HTTP\/1\.1 408 /);
});

Deno.test("a chunked body past requestBufferBytes is spooled under bodyTempDir, sent with its length, and the file removed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tq-spool-" });
  try {
    const seen: { length: string | null; te: string | null; bytes: number }[] =
      [];
    await using backend = serve(async (req) => {
      const files = [...Deno.readDirSync(dir)].length;
      seen.push({
        length: req.headers.get("content-length"),
        te: req.headers.get("transfer-encoding"),
        bytes: (await req.bytes()).length,
      });
      return new Response(String(files));
    });
    await using proxy = startProxy(
      [new TestUpstream("b", "/", origin(backend))],
      { requestBufferBytes: 1000, bodyTempDir: dir },
    );
    const body = new Uint8Array(300_000).fill(7);
    const res = await fetch(proxy.url + "/up", {
      method: "POST",
      // A stream: fetch sends it chunked.
      body: new Blob([body]).stream(),
    });
    assert.equal(
      await res.text(),
      "1",
      "the file exists while the worker reads",
    );
    assert.deepEqual(seen, [{ length: "300000", te: null, bytes: 300_000 }]);
    await waitFor(
      () => [...Deno.readDirSync(dir)].length === 0,
      2_000,
      `the spool file in ${dir} to be removed`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a body_temp_dir that cannot take the spool file is a 500 and an error line naming the key", async () => {
  const records: LogRecord[] = [];
  await using backend = echoBackend("b");
  await using proxy = startProxy(
    [new TestUpstream("b", "/", origin(backend))],
    {
      requestBufferBytes: 1000,
      bodyTempDir: "/nonexistent/tq-spool",
      logger: observeLogger(silentLogger, (r) => records.push(r)),
    },
  );
  const res = await fetch(proxy.url + "/up", {
    method: "POST",
    body: new Blob([new Uint8Array(5000)]).stream(),
  });
  assert.equal(res.status, 500);
  await res.body?.cancel();
  assert.deepEqual(
    records.map((r) => [r.level, r.msg, r.fields.key]),
    [["error", "request body not spooled", "server.body_temp_dir"]],
  );
});

Deno.test("onError builds every error answer of the proxy, from the failure's status, message, request id and headers", async () => {
  const failures: ProxyFailure[] = [];
  const onError: ErrorHandler = (_req, failure) => {
    failures.push(failure);
    return new Response(`custom ${failure.status}`, {
      status: failure.status,
      headers: failure.headers ?? {},
    });
  };
  await using stack = startProxy([
    new TestUpstream("down", "/down", undefined),
  ], { onError, retryWindowMs: 0 });
  const notFound = await fetch(`${stack.url}/elsewhere`);
  assert.equal(notFound.status, 404);
  assert.equal(await notFound.text(), "custom 404");
  const down = await fetch(`${stack.url}/down`, {
    headers: { "x-request-id": "abc" },
  });
  assert.equal(down.status, 503);
  assert.equal(down.headers.get("retry-after"), "7");
  assert.equal(await down.text(), "custom 503");
  assert.deepEqual(failures.map((f) => [f.status, f.requestId]), [
    [404, undefined],
    [503, "abc"],
  ]);
  assert.equal(failures[1]!.message, 'No healthy instance of worker "down"');
});
