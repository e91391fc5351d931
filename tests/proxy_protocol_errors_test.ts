// Protocol errors that Deno.serve decides before any code of ours runs,
// pinned through a real tqserver (docs/contract.md, "Protocol errors"). The
// cases our code decides (malformed chunked framing that arrives after the
// request head: 400, a short body and a debug line) are tested in
// src/proxy/proxy_test.ts. A failure here means Deno.serve changed: update
// the docs with it.
import assert from "node:assert/strict";
import { makeProject, startServer } from "./_helpers.ts";
import { rawText } from "./_workers.ts";

/** Sends `text` on a new connection; everything that came back before the close (at most `ms`). */
function raw(port: number, text: string, ms = 5000): Promise<string> {
  return rawText(port, text, { ms });
}

Deno.test({
  name:
    "protocol errors Deno.serve decides are pinned: framing with the head gets 0 bytes, 129 header fields a bare 400",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const project = makeProject();
    const server = await startServer(project);
    const head =
      "POST /echo HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked\r\n\r\n";
    try {
      for (
        const [name, body] of [
          ["zz", "zz\r\nhello\r\n0\r\n\r\n"],
          ["0x5", "0x5\r\nhello\r\n0\r\n\r\n"],
          ["an overflowing size", "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"],
          ["data longer than its size", "3\r\nhello\r\n0\r\n\r\n"],
        ]
      ) {
        await t.step(
          `${name} in the same packet as the head: closed, 0 bytes`,
          async () => {
            assert.equal(await raw(server.port, head + body), "");
          },
        );
      }
      await t.step("124 header fields reach a Deno worker", async () => {
        // With the 4 the proxy adds (X-Forwarded-For/-Host/-Proto,
        // X-Request-Id) that is 128, the most the worker's Deno.serve takes.
        let fields = "";
        for (let i = 0; i < 122; i++) fields += `x-h${i}: v\r\n`;
        const answer = await raw(
          server.port,
          `GET /echo HTTP/1.1\r\nHost: t.test\r\n${fields}Connection: close\r\n\r\n`,
        );
        assert.match(answer, /^HTTP\/1\.1 200 /);
      });
      await t.step("129 header fields: 400 with an empty body", async () => {
        let fields = "";
        for (let i = 0; i < 127; i++) fields += `x-h${i}: v\r\n`;
        const answer = await raw(
          server.port,
          `GET /echo HTTP/1.1\r\nHost: t.test\r\n${fields}Connection: close\r\n\r\n`,
        );
        assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
        assert.match(answer, /\r\ncontent-length: 0\r\n/);
        assert.match(answer, /\r\nconnection: close\r\n/);
        assert.ok(answer.endsWith("\r\n\r\n"), "no body");
      });
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});
