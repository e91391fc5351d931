// The proxy keeps HTTP/1.1 framing end to end, checked against workers whose
// HTTP stacks no one here wrote: Python's http.server (reads Content-Length
// only) and Node's node:http, run by a real tqserver on real ports.
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { makeProject, startServer } from "./_helpers.ts";
import {
  exchange,
  hasCommand,
  NODE_WORKER,
  parseAnswer,
  PY_WORKER,
  randomBytes,
  sha256,
  writeScriptWorker,
} from "./_workers.ts";

const HAVE = hasCommand("python3") && hasCommand("node");
const encoder = new TextEncoder();

interface Echo {
  worker: string;
  method: string;
  path: string;
  content_length: string | null;
  transfer_encoding: string | null;
  host: string | null;
  proxy_authorization?: string | null;
  expect?: string | null;
  length: number;
  sha256: string;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

Deno.test({
  name: "proxy keeps framing both ways for Python http.server and Node workers",
  ignore: !HAVE,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const project = makeProject({ workers: {} });
    writeScriptWorker(project.root, "py", ["python3", PY_WORKER]);
    writeScriptWorker(project.root, "node", ["node", NODE_WORKER]);
    const server = await startServer(project);
    const { port } = server;
    try {
      for (const worker of ["py", "node"]) {
        await t.step(
          `${worker}: 0 B, 10 B, 100 KB and 5 MiB POSTs arrive byte-exact with their Content-Length`,
          async () => {
            for (const size of [0, 10, 100_000, 5 * 1024 * 1024]) {
              const body = randomBytes(size);
              const head = `POST /${worker}/echo HTTP/1.1\r\nHost: t.test\r\n` +
                `Content-Length: ${size}\r\nConnection: close\r\n\r\n`;
              const answer = await exchange(
                port,
                concat(encoder.encode(head), body),
              );
              assert.equal(answer.status, 200, `${size} B: ${answer.text}`);
              const echo: Echo = JSON.parse(answer.text);
              assert.equal(echo.worker, worker);
              assert.equal(echo.content_length, String(size), `${size} B`);
              assert.equal(echo.transfer_encoding, null, `${size} B`);
              assert.equal(echo.length, size);
              assert.equal(echo.sha256, await sha256(body));
            }
          },
        );
      }

      await t.step(
        "a chunked upload reaches the Python worker whole, with a Content-Length",
        async () => {
          const body = randomBytes(300_000);
          let chunked = "";
          const parts: Uint8Array[] = [];
          for (let at = 0; at < body.length; at += 70_000) {
            const part = body.subarray(at, Math.min(body.length, at + 70_000));
            parts.push(encoder.encode(part.length.toString(16) + "\r\n"));
            parts.push(part, encoder.encode("\r\n"));
          }
          parts.push(encoder.encode("0\r\n\r\n"));
          chunked = "POST /py/echo HTTP/1.1\r\nHost: t.test\r\n" +
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
          let bytes: Uint8Array = encoder.encode(chunked);
          for (const part of parts) bytes = concat(bytes, part);
          const answer = await exchange(port, bytes);
          assert.equal(answer.status, 200, answer.text);
          const echo: Echo = JSON.parse(answer.text);
          assert.equal(echo.content_length, "300000");
          assert.equal(echo.transfer_encoding, null);
          assert.equal(echo.sha256, await sha256(body));
        },
      );

      await t.step(
        "a GET with a 40-byte body is refused with 400, never sent without its bytes",
        async () => {
          for (const worker of ["py", "node"]) {
            const answer = await exchange(
              port,
              `GET /${worker}/get-with-body HTTP/1.1\r\nHost: t.test\r\nContent-Length: 40\r\n` +
                `Connection: close\r\n\r\n${"0123456789".repeat(4)}`,
            );
            assert.equal(answer.status, 400, answer.text);
          }
        },
      );

      await t.step(
        "desync: a GET whose body is a request smuggles nothing",
        async () => {
          const smuggled = "GET /py/smuggled12 HTTP/1.1\r\nHost: x\r\n\r\n";
          assert.equal(smuggled.length, 40);
          const attack = `GET /py/first HTTP/1.1\r\nHost: t.test\r\n` +
            `Content-Length: 40\r\n\r\n${smuggled}GET /py/second HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n`;
          const attacker = exchange(port, attack, 3000);
          const others = Array.from(
            { length: 20 },
            (_, i) =>
              fetch(`${server.base}/py/other${i}`).then(async (res) => ({
                status: res.status,
                echo: await res.json() as Echo,
              })),
          );
          const results = await Promise.all(others);
          for (const [i, { status, echo }] of results.entries()) {
            assert.equal(status, 200);
            assert.equal(echo.path, `/py/other${i}`);
            assert.equal(echo.length, 0);
          }
          const first = await attacker;
          assert.equal(first.status, 400);
          const seen: string[] = await (await fetch(`${server.base}/py/seen`))
            .json();
          assert.ok(seen.includes("GET /py/other0"), String(seen));
          assert.ok(
            !seen.some((line) =>
              line.includes("smuggled") || line.includes("first")
            ),
            `the worker parsed a request the proxy never routed: ${seen}`,
          );
        },
      );

      for (const worker of ["py", "node"]) {
        await t.step(`${worker}: an early 413 reaches the client`, async () => {
          const res = await fetch(`${server.base}/${worker}/early413`, {
            method: "POST",
            body: randomBytes(5 * 1024 * 1024),
          });
          assert.equal(res.status, 413);
          assert.match(await res.text(), /too large/);
          const after = await fetch(`${server.base}/${worker}/echo`);
          assert.equal(after.status, 200);
          await after.body?.cancel();
        });
      }

      await t.step(
        "Expect: 100-continue gets 100 Continue and the body arrives whole",
        async () => {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          // Bounded: an answer that never comes (or no close) fails, not hangs.
          const timer = setTimeout(() => conn.close(), 10_000);
          try {
            await conn.write(encoder.encode(
              "POST /py/echo HTTP/1.1\r\nHost: t.test\r\nExpect: 100-continue\r\n" +
                "Content-Length: 10\r\nConnection: close\r\n\r\n",
            ));
            const buf = new Uint8Array(65536);
            const n = await conn.read(buf);
            assert.match(
              new TextDecoder().decode(buf.subarray(0, n ?? 0)),
              /^HTTP\/1\.1 100 Continue\r\n/,
            );
            await conn.write(encoder.encode("abcdefghij"));
            const chunks: Uint8Array[] = [];
            for (;;) {
              const m = await conn.read(buf);
              if (m === null) break;
              chunks.push(buf.slice(0, m));
            }
            const answer = parseAnswer(
              chunks.reduce((a, b) => concat(a, b), new Uint8Array()),
            );
            assert.equal(answer.status, 200);
            const echo: Echo = JSON.parse(answer.text);
            assert.equal(echo.length, 10);
            assert.equal(echo.content_length, "10");
          } finally {
            clearTimeout(timer);
            try {
              conn.close();
            } catch {
              // Closed by the timer.
            }
          }
        },
      );

      await t.step(
        "the client's Accept-Encoding reaches the worker and gzip passes intact",
        async () => {
          const answer = await exchange(
            port,
            "GET /node/gzip HTTP/1.1\r\nHost: t.test\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
          );
          assert.equal(answer.status, 200);
          assert.equal(answer.headers.get("content-encoding"), "gzip");
          assert.equal(
            Number(answer.headers.get("content-length")),
            answer.body.length,
          );
          assert.ok(answer.body.length < 1000, `${answer.body.length} bytes`);
          const text = new TextDecoder().decode(gunzipSync(answer.body));
          assert.equal(
            text,
            "tqserver passes compressed answers through. ".repeat(500),
          );
        },
      );

      await t.step(
        "Host is kept even when Connection names it; Proxy-Authorization is dropped",
        async () => {
          const answer = await exchange(
            port,
            "GET /py/echo HTTP/1.1\r\nHost: example.test:8443\r\nConnection: host, close\r\n" +
              "Proxy-Authorization: Basic c2VjcmV0\r\n\r\n",
          );
          const echo: Echo = JSON.parse(answer.text);
          assert.equal(echo.host, "example.test:8443");
          assert.equal(echo.proxy_authorization, null);
        },
      );

      await t.step(
        "an absolute-form target's authority wins over Host",
        async () => {
          const answer = await exchange(
            port,
            "GET http://abs.example/py/echo?q=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
          );
          const echo: Echo = JSON.parse(answer.text);
          assert.equal(echo.host, "abs.example");
          assert.equal(echo.path, "/py/echo?q=1");
        },
      );

      await t.step("HTTP/1.1 without Host is 400", async () => {
        // A worker's path (the proxy's check), an unrouted one, a static file.
        for (const path of ["/py/echo", "/nowhere", "/static/py/a.css"]) {
          const answer = await exchange(
            port,
            `GET ${path} HTTP/1.1\r\nConnection: close\r\n\r\n`,
          );
          assert.equal(answer.status, 400, path);
        }
      });
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});
