import assert from "node:assert/strict";
import { HeaderDeadline } from "./_deadline.ts";
import { NoResponseError, Transport } from "./_transport.ts";
import { BadResponseError } from "./_response_head.ts";
import { waitFor } from "../../tests/_helpers.ts";

const encoder = new TextEncoder();

/** A raw TCP worker that answers each connection's first request with `reply` bytes, then closes or not. */
function fixture(reply: string | Uint8Array, close = true) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let connections = 0;
  const received: string[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      connections++;
      (async () => {
        const buf = new Uint8Array(65536);
        const n = await conn.read(buf);
        received.push(new TextDecoder().decode(buf.subarray(0, n ?? 0)));
        const bytes = typeof reply === "string" ? encoder.encode(reply) : reply;
        for (let at = 0; at < bytes.length;) {
          at += await conn.write(bytes.subarray(at));
        }
        if (close) conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port,
    received,
    connections: () => connections,
    close: async () => {
      listener.close();
      await serving;
    },
  };
}

async function send(transport: Transport, port: number, method = "GET") {
  const req = new Request("http://t.test/");
  const deadline = new HeaderDeadline(req, 2000);
  try {
    const res = await transport.send({
      hostname: "127.0.0.1",
      port,
      origin: `127.0.0.1:${port}`,
      method,
      head: `${method} / HTTP/1.1\r\nhost: t.test\r\n`,
      body: { kind: "none" },
      limits: { bufferBytes: 1024, maxBodyBytes: 0, readTimeoutMs: 1000 },
      deadline,
    });
    const body = res.body === null ? "" : new TextDecoder().decode(
      res.body instanceof Uint8Array
        ? res.body
        : await new Response(res.body).bytes(),
    );
    res.release?.();
    return { head: res.head, body };
  } finally {
    deadline.clear();
  }
}

Deno.test("Transport skips 1xx interim answers (100 Continue, 103 Early Hints)", async () => {
  const worker = fixture(
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" +
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  );
  const transport = new Transport();
  try {
    const { head, body } = await send(transport, worker.port);
    assert.equal(head.status, 200);
    assert.equal(body, "ok");
  } finally {
    transport.close();
    await worker.close();
  }
});

Deno.test("Transport refuses a response head over 64 KiB", async () => {
  const worker = fixture(
    "HTTP/1.1 200 OK\r\n" + `X-Big: ${"a".repeat(70_000)}\r\n\r\n`,
  );
  const transport = new Transport();
  try {
    await assert.rejects(
      () => send(transport, worker.port),
      (err: unknown) =>
        err instanceof BadResponseError && /over 65536 bytes/.test(err.message),
    );
  } finally {
    transport.close();
    await worker.close();
  }
});

Deno.test("Transport reads a close-delimited body to the end and never reuses its connection", async () => {
  const worker = fixture("HTTP/1.1 200 OK\r\n\r\nuntil the end");
  const transport = new Transport();
  try {
    for (let i = 0; i < 2; i++) {
      const { body } = await send(transport, worker.port);
      assert.equal(body, "until the end");
    }
    assert.equal(worker.connections(), 2);
  } finally {
    transport.close();
    await worker.close();
  }
});

Deno.test("Transport decodes chunked bodies with extensions and trailers", async () => {
  const worker = fixture(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
  );
  const transport = new Transport();
  try {
    const { body } = await send(transport, worker.port);
    assert.equal(body, "abcde");
  } finally {
    transport.close();
    await worker.close();
  }
});

Deno.test("Transport fails a body cut short or a bad chunk size", async (t) => {
  const transport = new Transport();
  try {
    await t.step("Content-Length longer than what came", async () => {
      const worker = fixture(
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
      );
      await assert.rejects(() => send(transport, worker.port), TypeError);
      await worker.close();
    });
    await t.step("chunk size that is not hex", async () => {
      const worker = fixture(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
      );
      await assert.rejects(
        () => send(transport, worker.port),
        (err: unknown) =>
          err instanceof BadResponseError && /chunk size/.test(err.message),
      );
      await worker.close();
    });
    await t.step("closed before any response byte", async () => {
      const worker = fixture("");
      await assert.rejects(
        () => send(transport, worker.port),
        (err: unknown) => err instanceof NoResponseError && !err.reused,
      );
      await worker.close();
    });
  } finally {
    transport.close();
  }
});

/**
 * Whether the loopback TCP socket from `local` to `remote` still waits in
 * CLOSE_WAIT: its peer closed, its owner has not (Linux's /proc/net/tcp).
 */
function inCloseWait(local: number, remote: number): boolean {
  const hex = (port: number) =>
    `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return Deno.readTextFileSync("/proc/net/tcp").split("\n").some((line) => {
    const [, from, to, state] = line.trim().split(/\s+/);
    return from?.endsWith(hex(local)) && to?.endsWith(hex(remote)) &&
      state === "08";
  });
}

Deno.test("Transport drops a pooled connection the worker closed while idle", async () => {
  // Answers keep-alive, then closes 20 ms later: the idle read sees it.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let connections = 0;
  /** The transport's ports of the connections the worker closed, in order. */
  const closed: number[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      connections++;
      (async () => {
        await conn.read(new Uint8Array(8192));
        await conn.write(
          encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        );
        // The worker's idle close comes after the answer, as a keep-alive
        // timeout would: part of the behaviour under test.
        await new Promise((r) => setTimeout(r, 20));
        const { port } = conn.remoteAddr as Deno.NetAddr;
        conn.close();
        closed.push(port);
      })().catch(() => {});
    }
  })().catch(() => {});
  const transport = new Transport();
  try {
    for (const [i, method] of ["GET", "POST", "GET"].entries()) {
      const { body } = await send(transport, port, method);
      assert.equal(body, "ok", method);
      // The POST is not resent: the next request must find the closed
      // connection dropped from the pool, i.e. closed on our side too.
      await waitFor(
        () => closed[i] !== undefined && !inCloseWait(closed[i], port),
        2_000,
        `the transport to close connection ${i + 1} after the worker did`,
      );
    }
    assert.equal(connections, 3);
  } finally {
    transport.close();
    listener.close();
    await serving;
  }
});

Deno.test("Transport hands a chunked body that came whole over as bytes with its length, and streams one still coming", async (t) => {
  const transport = new Transport();
  try {
    await t.step("whole in one read: bytes, Content-Length", async () => {
      const worker = fixture(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
          "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
      );
      const req = new Request("http://t.test/");
      const deadline = new HeaderDeadline(req, 2000);
      const res = await transport.send({
        hostname: "127.0.0.1",
        port: worker.port,
        origin: `127.0.0.1:${worker.port}`,
        method: "GET",
        head: "GET / HTTP/1.1\r\nhost: t.test\r\n",
        body: { kind: "none" },
        limits: { bufferBytes: 1024, maxBodyBytes: 0, readTimeoutMs: 1000 },
        deadline,
      });
      deadline.clear();
      assert.ok(res.body instanceof Uint8Array, "bytes, not a stream");
      assert.equal(new TextDecoder().decode(res.body), "abcde");
      assert.equal(res.release, undefined, "its own bytes, not lent");
      assert.deepEqual(
        res.head.headers.filter(([name]) => name === "content-length"),
        [["content-length", "5"]],
      );
      await worker.close();
    });
    await t.step("the last chunk 100 ms later: a stream, whole", async () => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      const serving = (async () => {
        const conn = await listener.accept();
        await conn.read(new Uint8Array(8192));
        await conn.write(encoder.encode(
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        ));
        // The last chunk in a later read is the case under test, not a wait.
        await new Promise((r) => setTimeout(r, 100));
        await conn.write(encoder.encode("2\r\nde\r\n0\r\n\r\n"));
        conn.close();
      })();
      const { head, body } = await send(transport, port);
      assert.equal(body, "abcde");
      assert.equal(
        head.headers.some(([name]) => name === "content-length"),
        false,
      );
      listener.close();
      await serving;
    });
  } finally {
    transport.close();
  }
});

Deno.test("Transport lends a small body from the connection's buffer until release(): the connection is reused only then", async () => {
  // Each answer names the path and the client port (the connection) it came on.
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req, info) =>
      new Response(`${new URL(req.url).pathname} ${info.remoteAddr.port}`),
  );
  const port = server.addr.port;
  const transport = new Transport();
  const request = async (path: string) => {
    const req = new Request(`http://t.test${path}`);
    const deadline = new HeaderDeadline(req, 2000);
    try {
      return await transport.send({
        hostname: "127.0.0.1",
        port,
        origin: `127.0.0.1:${port}`,
        method: "GET",
        head: `GET ${path} HTTP/1.1\r\nhost: t.test\r\n`,
        body: { kind: "none" },
        limits: { bufferBytes: 1024, maxBodyBytes: 0, readTimeoutMs: 1000 },
        deadline,
      });
    } finally {
      deadline.clear();
    }
  };
  const text = (body: unknown) => new TextDecoder().decode(body as Uint8Array);
  try {
    const first = await request("/first");
    assert.ok(first.release, "a lent body");
    const [path, conn] = text(first.body).split(" ");
    assert.equal(path, "/first");
    // Not released: the next request may not overwrite those bytes.
    const second = await request("/second");
    const [, otherConn] = text(second.body).split(" ");
    assert.notEqual(
      otherConn,
      conn,
      "a second connection while the first is lent",
    );
    assert.equal(text(first.body), `/first ${conn}`, "the lent bytes intact");
    first.release!();
    second.release!();
    const third = await request("/third");
    assert.ok(
      [conn, otherConn].includes(text(third.body).split(" ")[1]),
      "a released connection is reused",
    );
    third.release!();
  } finally {
    transport.close();
    await server.shutdown();
  }
});
