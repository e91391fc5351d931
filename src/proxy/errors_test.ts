import assert from "node:assert/strict";
import { errorResponse } from "./_errors.ts";

Deno.test("errorResponse() states its Content-Length, so no later stage turns it into a stream", async () => {
  for (const accept of ["application/json", "text/html"]) {
    const res = errorResponse(
      new Request("http://localhost/x", { headers: { accept } }),
      { status: 408, message: "The request body stalled for 1000 ms" },
    );
    const bytes = await res.bytes();
    assert.equal(res.headers.get("content-length"), String(bytes.length));
  }
});

Deno.test("errorResponse() titles every status the proxy answers in its HTML page", async () => {
  const titles: [number, string][] = [
    [400, "Bad Request"],
    [404, "Not Found"],
    [408, "Request Timeout"],
    [413, "Content Too Large"],
    [499, "Client Closed Request"],
    [502, "Bad Gateway"],
    [503, "Service Unavailable"],
    [504, "Gateway Timeout"],
  ];
  for (const [status, title] of titles) {
    const res = errorResponse(
      new Request("http://localhost/x", { headers: { accept: "text/html" } }),
      { status, message: "Something went wrong" },
    );
    assert.match(await res.text(), new RegExp(`<h1>${status} ${title}</h1>`));
  }
});
