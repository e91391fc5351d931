import assert from "node:assert/strict";
import { readRequestFields, requestHead, upstreamHeaders } from "./_headers.ts";

const init = {
  host: "abs.example",
  clientIp: "203.0.113.7",
  trusted: false,
  requestId: "rid-1",
};

function clientHeaders(): Headers {
  return new Headers({
    host: "client.example",
    connection: "host, x-secret",
    "x-secret": "1",
    "proxy-authorization": "Basic eA==",
    "x-forwarded-for": "10.0.0.1",
    accept: "*/*",
  });
}

// Regression: WebSocket upgrades kept the client's Host, not an absolute-form
// target's authority (SPEC §7), while plain requests sent the right one.
Deno.test("upstreamHeaders() and requestHead() forward the same fields, with init.host as Host", () => {
  const pairs = upstreamHeaders(readRequestFields(clientHeaders()), init);
  const lines = requestHead(readRequestFields(clientHeaders()), {
    ...init,
    method: "GET",
    target: "/x",
  }).split("\r\n").slice(1, -1).map((line) => {
    const colon = line.indexOf(": ");
    return [line.slice(0, colon), line.slice(colon + 2)];
  });
  const sorted = (list: string[][]) =>
    list.map((p) => p.join(": ")).sort().join("\n");
  assert.equal(sorted(pairs), sorted(lines));
  assert.deepEqual(pairs.filter((p) => p[0] === "host"), [[
    "host",
    "abs.example",
  ]]);
  assert.ok(!pairs.some((p) => p[0] === "x-secret"), "Connection-named");
  assert.ok(!pairs.some((p) => p[0] === "proxy-authorization"));
  assert.deepEqual(
    pairs.find((p) => p[0] === "x-forwarded-for"),
    ["x-forwarded-for", "203.0.113.7"],
    "an untrusted peer's X-Forwarded-For is dropped",
  );
});
