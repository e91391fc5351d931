import assert from "node:assert/strict";
import {
  BadResponseError,
  bodyFraming,
  findHeadEnd,
  parseResponseHead,
} from "./_response_head.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const parse = (text: string) => parseResponseHead(bytes(text));

Deno.test("parseResponseHead() reads status, fields in order and framing", () => {
  const head = parse(
    "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n",
  );
  assert.equal(head.status, 201);
  assert.equal(head.contentLength, 5);
  assert.equal(head.chunked, false);
  assert.equal(head.keepAlive, true);
  assert.deepEqual(head.headers, [
    ["content-length", "5"],
    ["set-cookie", "a=1"],
    ["set-cookie", "b=2"],
  ]);
  assert.equal(bodyFraming(head, "GET"), "length");
  assert.equal(bodyFraming(head, "HEAD"), "none");
});

Deno.test("parseResponseHead() keeps obs-text bytes 0x80-0xFF of a value as latin1 chars, in a short head and one over 4 KiB", () => {
  for (const pad of [0, 6000]) {
    const head = new Uint8Array([
      ...bytes(`HTTP/1.1 200 OK\r\nX-Pad: ${"p".repeat(pad)}\r\nX-Bytes: a`),
      0x80,
      0x9f,
      0xe9,
      0xff,
      ...bytes("\r\n\r\n"),
    ]);
    const value = parseResponseHead(head).headers[1]![1];
    assert.deepEqual(
      [...value].map((c) => c.charCodeAt(0)),
      [0x61, 0x80, 0x9f, 0xe9, 0xff],
      `head of ${head.length} bytes`,
    );
  }
});

Deno.test("parseResponseHead() keep-alive: HTTP/1.0 closes unless asked, Connection: close closes", () => {
  assert.equal(parse("HTTP/1.0 200 OK\r\n\r\n").keepAlive, false);
  assert.equal(
    parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keepAlive,
    true,
  );
  assert.equal(
    parse("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").keepAlive,
    false,
  );
});

Deno.test("parseResponseHead() rejects every malformed head with BadResponseError", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["not HTTP", "HTTX/1.1 200 OK\r\n\r\n", /Bad status line/],
    ["HTTP/2 status line", "HTTP/2 200 OK\r\n\r\n", /Bad status line/],
    ["no space after version", "HTTP/1.1-200 OK\r\n\r\n", /Bad status line/],
    ["short status line", "HTTP/1.1 20\r\n\r\n", /Bad status line/],
    ["status not three digits", "HTTP/1.1 2x0 OK\r\n\r\n", /Bad status code/],
    ["status out of range", "HTTP/1.1 600 Odd\r\n\r\n", /Bad status code/],
    ["status under 100", "HTTP/1.1 099 Odd\r\n\r\n", /Bad status code/],
    ["text glued to the code", "HTTP/1.1 2000 OK\r\n\r\n", /Bad status line/],
    [
      "header without colon",
      "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
      /Bad header line/,
    ],
    ["empty header name", "HTTP/1.1 200 OK\r\n: x\r\n\r\n", /Bad header line/],
    [
      "space before the colon",
      "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",
      /Bad header name/,
    ],
    [
      "obsolete line folding",
      "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
      /Obsolete line folding/,
    ],
    [
      "non-numeric Content-Length",
      "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n",
      /Bad Content-Length/,
    ],
    [
      "empty Content-Length",
      "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
      /Bad Content-Length/,
    ],
    [
      "Content-Length of 16 digits (past what a Number holds exactly)",
      "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456\r\n\r\n",
      /Bad Content-Length/,
    ],
    [
      "negative Content-Length",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      /Bad Content-Length/,
    ],
    [
      "list-valued Content-Length",
      "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
      /Bad Content-Length/,
    ],
    [
      "a transfer coding other than chunked",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      /Unsupported Transfer-Encoding/,
    ],
    [
      "chunked, then another transfer coding",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      /Unsupported Transfer-Encoding/,
    ],
    [
      "two Transfer-Encoding fields",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      /Unsupported Transfer-Encoding/,
    ],
    [
      "NUL in a header value",
      "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n",
      /Bad header value/,
    ],
    [
      "CR inside a header value",
      "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
      /Bad header value/,
    ],
    [
      "CR ending a header value (before its CRLF)",
      "HTTP/1.1 200 OK\r\nX-A: a\r\r\n\r\n",
      /Bad header value/,
    ],
    [
      "duplicate differing Content-Length",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      /Conflicting Content-Length/,
    ],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => parse(text),
        (err: unknown) =>
          err instanceof BadResponseError && message.test(err.message),
      );
    });
  }
});

Deno.test("parseResponseHead() trims spaces and tabs around a value, and accepts bare LF line ends", () => {
  const head = parse(
    "HTTP/1.1 200 OK\nX-A: \t a b \t\nX-Empty:\r\nContent-Length:7\n\n",
  );
  assert.deepEqual(head.headers, [
    ["x-a", "a b"],
    ["x-empty", ""],
    ["content-length", "7"],
  ]);
  assert.equal(head.contentLength, 7);
});

Deno.test("parseResponseHead() accepts a duplicate equal Content-Length", () => {
  const head = parse(
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
  );
  assert.equal(head.contentLength, 5);
});

Deno.test("parseResponseHead() Transfer-Encoding overrides a length, which is dropped, and then the connection is not reused", () => {
  const both = parse(
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
  );
  assert.equal(both.chunked, true);
  assert.equal(both.contentLength, -1);
  assert.equal(both.keepAlive, false);
  assert.deepEqual(
    both.headers,
    [["transfer-encoding", "chunked"]],
    "the overridden length is not passed on",
  );
  assert.equal(bodyFraming(both, "GET"), "chunked");
});

Deno.test("bodyFraming() is close-delimited without length or chunked, none for 1xx/204/304/HEAD", () => {
  const plain = parse("HTTP/1.1 200 OK\r\n\r\n");
  assert.equal(bodyFraming(plain, "GET"), "close");
  for (const status of [100, 103, 204, 304]) {
    assert.equal(
      bodyFraming(
        parse(`HTTP/1.1 ${status} X\r\nContent-Length: 9\r\n\r\n`),
        "GET",
      ),
      "none",
      String(status),
    );
  }
  assert.equal(
    bodyFraming(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), "GET"),
    "none",
  );
  const interim = parse("HTTP/1.1 100 Continue\r\n\r\n");
  assert.equal(interim.status, 100);
});

Deno.test("findHeadEnd() finds CRLF CRLF or bare LF LF, and -1 for an incomplete head", () => {
  const full = bytes("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody");
  assert.equal(findHeadEnd(full, 0, full.length), full.length - 4);
  const lf = bytes("HTTP/1.1 200 OK\nA: b\n\nbody");
  assert.equal(findHeadEnd(lf, 0, lf.length), lf.length - 4);
  const partial = bytes("HTTP/1.1 200 OK\r\nA: b\r\n\r");
  assert.equal(findHeadEnd(partial, 0, partial.length), -1);
  const noEnd = bytes("HTTP/1.1 200 OK\r\nA: b\r\n");
  assert.equal(findHeadEnd(noEnd, 0, noEnd.length), -1);
  // Two heads back to back (a 100 Continue then the answer): the first ends first.
  const two = bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
  assert.equal(findHeadEnd(two, 0, two.length), 25);
});
