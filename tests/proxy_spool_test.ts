// No silent loss at the edges (SPEC §7): a chunked upload past
// `server.request_buffer_bytes` is spooled to a file under
// `server.body_temp_dir` and reaches a Content-Length-only worker (Python's
// http.server) whole; the file never outlives its request; a known length
// stays a Content-Length through the compression stage.
import assert from "node:assert/strict";
import { join } from "node:path";
import { concat, makeProject, startServer, waitFor } from "./_helpers.ts";
import {
  exchange,
  hasCommand,
  PY_WORKER,
  randomBytes,
  sha256,
  writeScriptWorker,
} from "./_workers.ts";

const encoder = new TextEncoder();

/** `body` as a chunked request: head, then chunks of `size` bytes, then the last chunk. */
function chunkedRequest(path: string, body: Uint8Array, size = 64 * 1024) {
  const parts: Uint8Array[] = [encoder.encode(
    `POST ${path} HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
  )];
  for (let at = 0; at < body.length; at += size) {
    const part = body.subarray(at, Math.min(body.length, at + size));
    parts.push(encoder.encode(part.length.toString(16) + "\r\n"), part);
    parts.push(encoder.encode("\r\n"));
  }
  parts.push(encoder.encode("0\r\n\r\n"));
  return concat(parts);
}

function spooled(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name);
}

interface Echo {
  content_length: string | null;
  transfer_encoding: string | null;
  length: number;
  sha256: string;
}

Deno.test({
  name: "chunked uploads past the memory buffer are spooled and arrive whole",
  ignore: !hasCommand("python3"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const project = makeProject({ workers: {} });
    // makeProject's server.yaml has a `server:` section already: the keys go in it.
    const yaml = join(project.root, "config", "server.yaml");
    Deno.writeTextFileSync(
      yaml,
      Deno.readTextFileSync(yaml).replace(
        "server:\n",
        "server:\n  body_temp_dir: spool\n  max_body_bytes: 8388608\n",
      ),
    );
    const spool = join(project.root, "spool");
    Deno.mkdirSync(spool);
    writeScriptWorker(project.root, "py", ["python3", PY_WORKER]);
    const server = await startServer(project);
    const { port } = server;
    try {
      await t.step(
        "a 5 MiB chunked upload reaches the Python worker byte-exact with its Content-Length",
        async () => {
          const body = randomBytes(5 * 1024 * 1024);
          const answer = await exchange(port, chunkedRequest("/py/echo", body));
          assert.equal(answer.status, 200, answer.text);
          const echo: Echo = JSON.parse(answer.text);
          assert.equal(echo.content_length, String(body.length));
          assert.equal(echo.transfer_encoding, null);
          assert.equal(echo.length, body.length);
          assert.equal(echo.sha256, await sha256(body));
          assert.deepEqual(spooled(spool), []);
        },
      );

      await t.step(
        "a chunked upload over max_body_bytes is 413 and leaves no file",
        async () => {
          const body = randomBytes(9 * 1024 * 1024);
          const answer = await exchange(port, chunkedRequest("/py/echo", body));
          assert.equal(answer.status, 413, answer.text);
          await waitFor(() => spooled(spool).length === 0, 5000);
        },
      );

      await t.step(
        "a client that aborts mid-upload leaves no file",
        async () => {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          const whole = chunkedRequest(
            "/py/echo",
            randomBytes(6 * 1024 * 1024),
          );
          try {
            // 3 MiB of the 6: past the 1 MiB buffer, so a file exists.
            const part = whole.subarray(0, 3 * 1024 * 1024);
            for (let at = 0; at < part.length;) {
              at += await conn.write(part.subarray(at));
            }
            await waitFor(() => spooled(spool).length === 1, 5000);
          } finally {
            conn.close();
          }
          await waitFor(() => spooled(spool).length === 0, 5000);
        },
      );
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});

Deno.test({
  name:
    "a JSON answer of known length keeps its Content-Length without Accept-Encoding",
  ignore: !hasCommand("python3"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const project = makeProject({ workers: {} });
    writeScriptWorker(project.root, "py", ["python3", PY_WORKER]);
    const server = await startServer(project);
    const { port } = server;
    try {
      for (
        const [path, size] of [["json3k", 3000], ["json100k", 100_000]] as const
      ) {
        await t.step(`${size} B over HTTP/1.1`, async () => {
          const answer = await exchange(
            port,
            `GET /py/${path} HTTP/1.1\r\nHost: t.test\r\nConnection: close\r\n\r\n`,
          );
          assert.equal(answer.status, 200);
          assert.equal(answer.headers.get("content-length"), String(size));
          assert.equal(answer.headers.get("transfer-encoding"), undefined);
          assert.equal(answer.body.length, size);
        });
        await t.step(`${size} B to an HTTP/1.0 keep-alive client`, async () => {
          const answer = await exchange(
            port,
            `GET /py/${path} HTTP/1.0\r\nHost: t.test\r\nConnection: keep-alive\r\n\r\n`,
            10_000,
            true,
          );
          assert.equal(answer.status, 200);
          assert.equal(answer.headers.get("content-length"), String(size));
          assert.equal(answer.body.length, size);
        });
      }
      await t.step("with Accept-Encoding: gzip it is compressed", async () => {
        const answer = await exchange(
          port,
          "GET /py/json3k HTTP/1.1\r\nHost: t.test\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
        );
        assert.equal(answer.headers.get("content-encoding"), "gzip");
      });
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});
