import assert from "node:assert/strict";
import { OpenStreams } from "./streams.ts";

// Regression: reading `res.body` of every answer turned proxied bytes into a
// stream and cost Deno.serve's fast path (a fifth of proxy throughput).
Deno.test("OpenStreams.track() leaves an answer that is not an event stream untouched, body unread", () => {
  const streams = new OpenStreams();
  const res = new Response("hello", {
    headers: { "content-type": "text/plain" },
  });
  let bodyRead = false;
  const body = Object.getOwnPropertyDescriptor(Response.prototype, "body")!;
  Object.defineProperty(res, "body", {
    get() {
      bodyRead = true;
      return body.get!.call(res);
    },
  });
  assert.equal(streams.track(res), res);
  assert.equal(bodyRead, false);
  assert.equal(streams.size, 0);
});

Deno.test("OpenStreams.closeAll() ends an open event stream, and later ones get a retry hint", async () => {
  const streams = new OpenStreams();
  const sse = () =>
    new Response(new ReadableStream({ start() {} }), {
      headers: { "content-type": "text/event-stream" },
    });
  const tracked = streams.track(sse());
  assert.equal(streams.size, 1);
  const reading = tracked.text();
  streams.closeAll();
  assert.equal(await reading, "");
  assert.equal(streams.size, 0);
  assert.equal(await streams.track(sse()).text(), "retry: 500\n\n");
});
