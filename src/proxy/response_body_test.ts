import assert from "node:assert/strict";
import type { Conn } from "./_conn.ts";
import { bufferedChunked } from "./_response_body.ts";

/** The buffer state of a connection whose unread bytes are `text` after `pad` bytes already read. */
function buffered(text: string, pad = 3): Pick<Conn, "buf" | "start" | "end"> {
  const bytes = new TextEncoder().encode("x".repeat(pad) + text);
  return { buf: bytes, start: pad, end: bytes.length };
}

function decode(
  text: string,
  maxBytes = 1024,
): { body: string | null; rest: string } {
  const conn = buffered(text);
  const start = conn.start;
  const body = bufferedChunked(conn as Conn, maxBytes);
  if (body === null) assert.equal(conn.start, start, "nothing consumed");
  return {
    body: body === null ? null : new TextDecoder().decode(body),
    rest: new TextDecoder().decode(conn.buf.subarray(conn.start, conn.end)),
  };
}

Deno.test("bufferedChunked() decodes a chunked body that is all in the buffer", async (t) => {
  await t.step("chunks, last chunk, empty line", () => {
    assert.deepEqual(decode("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), {
      body: "abcde",
      rest: "",
    });
  });
  await t.step("bare LF line ends, upper-case hex", () => {
    assert.deepEqual(decode("A\nabcdefghij\n0\n\n"), {
      body: "abcdefghij",
      rest: "",
    });
  });
  await t.step("trailer fields are dropped", () => {
    assert.deepEqual(decode("1\r\na\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"), {
      body: "a",
      rest: "",
    });
  });
  await t.step("an empty body", () => {
    assert.deepEqual(decode("0\r\n\r\n"), { body: "", rest: "" });
  });
  await t.step("bytes after the body stay unread", () => {
    assert.deepEqual(decode("1\r\na\r\n0\r\n\r\nHTTP/1.1"), {
      body: "a",
      rest: "HTTP/1.1",
    });
  });
});

Deno.test("bufferedChunked() leaves to the streaming reader what is incomplete, too large or odd", async (t) => {
  const cases: [string, string, number?][] = [
    ["no last chunk yet", "3\r\nabc\r\n"],
    ["a chunk's data still coming", "5\r\nabc"],
    ["no CRLF after the data yet", "3\r\nabc"],
    ["no empty line after the last chunk", "3\r\nabc\r\n0\r\n"],
    ["inside a trailer", "0\r\nX-T: 1"],
    ["over maxBytes", "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 4],
    ["a chunk extension", "3;x=1\r\nabc\r\n0\r\n\r\n"],
    ["a size that is not hex", "zz\r\nabc\r\n0\r\n\r\n"],
    ["an empty size line", "\r\nabc\r\n0\r\n\r\n"],
    ["a size of 13 digits", "0000000000003\r\nabc\r\n0\r\n\r\n"],
    ["data longer than its size", "2\r\nabc\r\n0\r\n\r\n"],
  ];
  for (const [name, text, max] of cases) {
    await t.step(name, () => {
      assert.equal(decode(text, max).body, null);
    });
  }
});
