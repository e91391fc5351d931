import assert from "node:assert/strict";
import zlib from "node:zlib";
import {
  compressBytes,
  compressStream,
  createCompressor,
  createTypeMatcher,
  negotiateEncoding,
} from "./mod.ts";

const HTML = "<!doctype html><title>t</title>" +
  "<p>Hello, compressed world.</p>\n".repeat(200);

function decode(bytes: Uint8Array, encoding: string | null): string {
  const buf = encoding === "br"
    ? zlib.brotliDecompressSync(bytes)
    : encoding === "gzip"
    ? zlib.gunzipSync(bytes)
    : bytes;
  return new TextDecoder().decode(buf);
}

Deno.test("negotiateEncoding() follows q-values, prefers br on a tie and honours q=0 and *", () => {
  const cases: [string | null, "br" | "gzip" | null][] = [
    [null, null],
    ["", null],
    ["identity", null],
    ["gzip", "gzip"],
    ["x-gzip", "gzip"],
    ["gzip, deflate, br", "br"],
    ["br;q=0.5, gzip;q=0.8", "gzip"],
    ["br;q=0, gzip", "gzip"],
    ["br;q=0, gzip;q=0", null],
    ["*", "br"],
    ["*;q=0.1, br;q=0", "gzip"],
    ["GZIP;Q=1", "gzip"],
    ["deflate", null],
  ];
  for (const [header, expected] of cases) {
    assert.equal(negotiateEncoding(header), expected, String(header));
  }
  assert.equal(negotiateEncoding("br, gzip", ["gzip"]), "gzip");
  assert.equal(negotiateEncoding("br", ["gzip"]), null);
});

Deno.test("createTypeMatcher() matches exact types and one-star patterns, ignoring parameters", () => {
  const match = createTypeMatcher([
    "text/*",
    "application/*+json",
    "image/svg+xml",
  ]);
  assert.ok(match("text/html; charset=utf-8"));
  assert.ok(match("TEXT/CSS"));
  assert.ok(match("application/ld+json"));
  assert.ok(match("image/svg+xml; charset=utf-8"));
  assert.ok(!match("application/json"));
  assert.ok(!match("image/png"));
  assert.ok(!match(null));
  assert.throws(() => createTypeMatcher(["html"]), /"html"/);
  assert.throws(() => createTypeMatcher(["*/*+*"]), TypeError);
});

Deno.test("compressBytes() output decodes to the input, br and gzip", async () => {
  const bytes = new TextEncoder().encode(HTML);
  for (const encoding of ["br", "gzip"] as const) {
    const out = await compressBytes(bytes, encoding);
    assert.ok(out.length < bytes.length / 5, `${encoding} ${out.length}`);
    assert.equal(decode(out, encoding), HTML);
  }
});

function htmlResponse(
  body: BodyInit | null = HTML,
  headers: Record<string, string> = {},
  status = 200,
): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/html; charset=utf-8", ...headers },
  });
}

function get(headers: Record<string, string> = {}, method = "GET") {
  return new Request("http://localhost/page", { method, headers });
}

Deno.test("the compressor encodes a worker's HTML per Accept-Encoding, and it decodes to what the worker sent", async () => {
  const compress = createCompressor();
  for (const encoding of ["br", "gzip"] as const) {
    const res = await compress(
      get({ "accept-encoding": encoding }),
      htmlResponse(HTML, {
        "content-length": String(HTML.length),
        etag: '"v1"',
        vary: "Cookie",
      }),
    );
    assert.equal(res.headers.get("content-encoding"), encoding);
    assert.equal(res.headers.get("content-length"), null);
    assert.equal(res.headers.get("vary"), "Cookie, Accept-Encoding");
    assert.equal(res.headers.get("etag"), 'W/"v1"');
    const bytes = await res.bytes();
    assert.ok(bytes.length < HTML.length / 5);
    assert.equal(decode(bytes, encoding), HTML);
  }
  const original = htmlResponse();
  const plain = await compress(get(), original);
  assert.equal(plain, original, "not rewrapped: its body and framing stay");
  assert.equal(plain.headers.get("content-encoding"), null);
  assert.equal(plain.headers.get("vary"), "Accept-Encoding");
  assert.equal(await plain.text(), HTML);
});

Deno.test("the compressor leaves alone what must not or need not be compressed", async (t) => {
  const compress = createCompressor({ minBytes: 1024 });
  const br = { "accept-encoding": "br, gzip" };
  const cases: [string, Response][] = [
    [
      "SSE",
      htmlResponse("data: x\n\n", { "content-type": "text/event-stream" }),
    ],
    ["a 206", htmlResponse(HTML, { "content-range": "bytes 0-9/100" }, 206)],
    ["already encoded", htmlResponse(HTML, { "content-encoding": "gzip" })],
    ["no-transform", htmlResponse(HTML, { "cache-control": "no-transform" })],
    ["an image", htmlResponse(HTML, { "content-type": "image/png" })],
    ["below min_bytes", htmlResponse("<p>hi</p>", { "content-length": "9" })],
    ["a 304", htmlResponse(null, {}, 304)],
  ];
  for (const [name, res] of cases) {
    await t.step(name, async () => {
      const out = await compress(get(br), res);
      assert.equal(out, res);
      assert.notEqual(out.headers.get("content-encoding"), "br");
      await out.body?.cancel();
    });
  }
  await t.step("compression disabled", async () => {
    const off = createCompressor({ enabled: false });
    const res = htmlResponse();
    assert.equal(await off(get(br), res), res);
  });
});

Deno.test("a HEAD answer gets the headers the GET would, without a body", async () => {
  const compress = createCompressor();
  const res = await compress(
    get({ "accept-encoding": "gzip" }, "HEAD"),
    htmlResponse(null, { "content-length": String(HTML.length) }),
  );
  assert.equal(res.headers.get("content-encoding"), "gzip");
  assert.equal(res.headers.get("content-length"), null);
  assert.equal((await res.bytes()).length, 0);
});

Deno.test("an answer of unknown length is flushed chunk by chunk: the first part arrives before the worker ends", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const source = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(new TextEncoder().encode("<p>first part</p>"));
      await released;
      controller.enqueue(new TextEncoder().encode("<p>second</p>"));
      controller.close();
    },
  });
  const compressed = compressStream(source, "gzip", { flushEachChunk: true });
  const reader = compressed.getReader();
  const first = await Promise.race([
    reader.read(),
    new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 3000)),
  ]);
  assert.notEqual(first, "timeout", "nothing came out before the source ended");
  const chunk = (first as ReadableStreamReadResult<Uint8Array>).value!;
  // A sync-flushed gzip prefix inflates to the first part already.
  const inflated = zlib.gunzipSync(chunk, {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  assert.equal(new TextDecoder().decode(inflated), "<p>first part</p>");
  release();
  const rest: Uint8Array[] = [chunk];
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    rest.push(r.value);
  }
  const all = new Uint8Array(rest.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of rest) {
    all.set(c, at);
    at += c.length;
  }
  assert.equal(decode(all, "gzip"), "<p>first part</p><p>second</p>");
});

// Regression: a copy of the response turned tqserver's own 408 into a chunked
// answer, and a client reading by Content-Length waited for the close.
Deno.test("an answer left uncompressed is the same response, so a known length stays known", async () => {
  const compress = createCompressor();
  const original = htmlResponse();
  const res = await compress(get({ "accept-encoding": "identity" }), original);
  assert.equal(res, original);
  assert.equal(res.headers.get("vary"), "Accept-Encoding");
});

Deno.test("regression: without Accept-Encoding a byte body is never read, so Deno.serve keeps its Content-Length", async () => {
  const compress = createCompressor();
  for (const headers of [{}, { "accept-encoding": "identity" }]) {
    const original = htmlResponse(new TextEncoder().encode(HTML));
    let read = false;
    // Reading `body` turns the bytes into a stream: Deno.serve then sends
    // them chunked (close-delimited to an HTTP/1.0 client).
    const body = Object.getOwnPropertyDescriptor(Response.prototype, "body")!;
    Object.defineProperty(original, "body", {
      get() {
        read = true;
        return body.get!.call(this);
      },
    });
    const res = await compress(
      get(headers),
      original,
      (name) =>
        name === "content-length"
          ? String(HTML.length)
          : name === "content-type"
          ? "text/html"
          : null,
    );
    assert.equal(res, original);
    assert.equal(read, false, JSON.stringify(headers));
  }
});

Deno.test("an answer of unknown length that turns out short keeps its exact length and is not compressed", async () => {
  const compress = createCompressor({ minBytes: 1024 });
  // A string body has no Content-Length header until Deno sends it: an error page, say.
  const res = await compress(
    get({ "accept-encoding": "gzip" }),
    htmlResponse(new Blob(["<p>short</p>"]).stream()),
  );
  assert.equal(res.headers.get("content-encoding"), null);
  assert.equal(res.headers.get("vary"), "Accept-Encoding");
  assert.equal(await res.text(), "<p>short</p>");
});

Deno.test("a slow stream of unknown length is compressed without waiting for min_bytes", async () => {
  const compress = createCompressor({ minBytes: 1024 });
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(new TextEncoder().encode("<p>first</p>"));
      await released;
      controller.enqueue(new TextEncoder().encode(HTML));
      controller.close();
    },
  });
  const res = await Promise.race([
    compress(get({ "accept-encoding": "gzip" }), htmlResponse(body)),
    new Promise<"held">((r) => setTimeout(() => r("held"), 3000)),
  ]);
  assert.notEqual(res, "held", "headers held back until min_bytes");
  const answer = res as Response;
  assert.equal(answer.headers.get("content-encoding"), "gzip");
  release();
  assert.equal(decode(await answer.bytes(), "gzip"), "<p>first</p>" + HTML);
});
