// The worker leg's WebSocket client (`_ws_client.ts`) against a raw TCP
// server that sends what Deno's own WebSocket never does: fragmented
// messages, pings, bad frames, and close codes the `WebSocket` class refuses.
import assert from "node:assert/strict";
import {
  connectWebSocket,
  isSendableCloseCode,
  type WebSocketClient,
} from "./_ws_client.ts";

const encoder = new TextEncoder();
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A server frame (unmasked). */
function frame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? [n] : [126, n >> 8, n & 0xff];
  return new Uint8Array([(fin ? 0x80 : 0) | opcode, ...head, ...payload]);
}

/** Reads one client frame from `conn`, unmasked; checks that it was masked. */
async function readFrame(
  conn: Deno.Conn,
  pending: { buf: Uint8Array },
): Promise<{ opcode: number; payload: Uint8Array }> {
  const need = async (n: number) => {
    while (pending.buf.length < n) {
      const chunk = new Uint8Array(65536);
      const got = await conn.read(chunk);
      if (got === null) throw new Error("Client closed");
      const next = new Uint8Array(pending.buf.length + got);
      next.set(pending.buf);
      next.set(chunk.subarray(0, got), pending.buf.length);
      pending.buf = next;
    }
  };
  await need(2);
  const b = pending.buf;
  assert.ok(b[1]! & 0x80, "client frames are masked");
  let n = b[1]! & 0x7f;
  let at = 2;
  if (n === 126) {
    await need(4);
    n = (pending.buf[2]! << 8) | pending.buf[3]!;
    at = 4;
  } else if (n === 127) {
    await need(10);
    n = Number(new DataView(pending.buf.buffer).getBigUint64(2));
    at = 10;
  }
  await need(at + 4 + n);
  const mask = pending.buf.slice(at, at + 4);
  const payload = pending.buf.slice(at + 4, at + 4 + n).map((x, i) =>
    x ^ mask[i & 3]!
  );
  const opcode = pending.buf[0]! & 0x0f;
  pending.buf = pending.buf.slice(at + 4 + n);
  return { opcode, payload };
}

/** A raw WebSocket server for one connection; `script` talks to the client. */
function rawServer(
  script: (
    conn: Deno.Conn,
    read: () => Promise<{ opcode: number; payload: Uint8Array }>,
  ) => Promise<void>,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    try {
      let head = "";
      const buf = new Uint8Array(8192);
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder().decode(buf.subarray(0, n));
      }
      const key = /sec-websocket-key: (.+)\r\n/i.exec(head)![1]!;
      const digest = await crypto.subtle.digest(
        "SHA-1",
        encoder.encode(key + GUID),
      );
      const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
      await conn.write(encoder.encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
      ));
      const pending = { buf: new Uint8Array(0) };
      await script(conn, () => readFrame(conn, pending));
    } finally {
      try {
        conn.close();
      } catch {
        // Closed by the client.
      }
      listener.close();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done };
}

function connect(port: number, maxMessageBytes = 1 << 20) {
  return connectWebSocket({
    hostname: "127.0.0.1",
    port,
    target: "/ws",
    headers: [["host", "t.test"]],
    protocols: [],
    maxMessageBytes,
    signal: AbortSignal.timeout(5000),
  });
}

/** Collects messages and the close of a started client. */
function watch(client: WebSocketClient) {
  const messages: (string | Uint8Array)[] = [];
  let resolveClose: (c: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    resolveClose = r
  );
  client.start({
    onmessage: (data) => messages.push(data),
    onclose: (code, reason) => resolveClose({ code, reason }),
  });
  return { messages, closed };
}

Deno.test("isSendableCloseCode() allows what a close frame may carry", () => {
  for (const code of [1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999]) {
    assert.ok(isSendableCloseCode(code), String(code));
  }
  for (const code of [999, 1004, 1005, 1006, 1015, 2999, 5000]) {
    assert.ok(!isSendableCloseCode(code), String(code));
  }
});

Deno.test("the client joins fragments, answers pings, masks what it sends and relays a 1008 close", async () => {
  const server = rawServer(async (conn, read) => {
    await conn.write(frame(0x1, encoder.encode("hel"), false));
    await conn.write(frame(0x9, encoder.encode("p1"))); // A ping between fragments.
    await conn.write(frame(0x0, encoder.encode("lo")));
    const pong = await read();
    assert.equal(pong.opcode, 0xa);
    assert.equal(new TextDecoder().decode(pong.payload), "p1");
    const sent = await read();
    assert.equal(sent.opcode, 0x2);
    assert.equal(sent.payload.length, 70_000);
    assert.ok(sent.payload.every((x) => x === 7));
    await conn.write(
      frame(0x8, new Uint8Array([0x03, 0xf0, ...encoder.encode("policy")])),
    );
    const echo = await read();
    assert.equal(echo.opcode, 0x8);
    assert.deepEqual([...echo.payload.slice(0, 2)], [0x03, 0xf0]);
  });
  const client = await connect(server.port);
  const { messages, closed } = watch(client);
  client.send(new Uint8Array(70_000).fill(7));
  assert.deepEqual(await closed, { code: 1008, reason: "policy" });
  assert.deepEqual(messages, ["hello"]);
  await server.done;
});

Deno.test("the client sends any close code, 1001 and 1011 included", async () => {
  for (const code of [1001, 1011]) {
    const server = rawServer(async (conn, read) => {
      const close = await read();
      assert.equal(close.opcode, 0x8);
      assert.equal((close.payload[0]! << 8) | close.payload[1]!, code);
      assert.equal(new TextDecoder().decode(close.payload.slice(2)), "bye");
      await conn.write(frame(0x8, close.payload));
    });
    const client = await connect(server.port);
    const { closed } = watch(client);
    client.close(code, "bye");
    assert.equal((await closed).code, code);
    await server.done;
  }
});

Deno.test("a message over maxMessageBytes is refused with 1009 before its bytes are read", async () => {
  const server = rawServer(async (conn, read) => {
    // Only the header of a 1 GiB frame: the client must not wait for it.
    await conn.write(new Uint8Array([0x82, 127, 0, 0, 0, 0, 0x40, 0, 0, 0]));
    const close = await read();
    assert.equal((close.payload[0]! << 8) | close.payload[1]!, 1009);
  });
  const client = await connect(server.port, 1024);
  const { closed } = watch(client);
  assert.equal((await closed).code, 1009);
  await server.done;
});

Deno.test("a connection that ends without a close frame is 1006; bad frames are 1002 and bad UTF-8 1007", async (t) => {
  await t.step("ended", async () => {
    const server = rawServer(async (conn) => {
      conn.close();
      await Promise.resolve();
    });
    const { closed } = watch(await connect(server.port));
    assert.equal((await closed).code, 1006);
    await server.done.catch(() => {});
  });
  for (
    const [name, bytes, code] of [
      ["a fragmented ping", frame(0x9, new Uint8Array(0), false), 1002],
      ["an unknown opcode", frame(0x3, new Uint8Array(0)), 1002],
      [
        "a close code 1005 on the wire",
        frame(0x8, new Uint8Array([3, 237])),
        1002,
      ],
      ["invalid UTF-8 text", frame(0x1, new Uint8Array([0xc3, 0x28])), 1007],
    ] as const
  ) {
    await t.step(name, async () => {
      const server = rawServer(async (conn, read) => {
        await conn.write(bytes);
        const close = await read();
        assert.equal((close.payload[0]! << 8) | close.payload[1]!, code);
      });
      const { closed } = watch(await connect(server.port));
      assert.equal((await closed).code, code);
      await server.done;
    });
  }
});
