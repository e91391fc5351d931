import assert from "node:assert/strict";
import { errorResponse } from "./_errors.ts";

Deno.test("errorResponse() states its Content-Length, so no later stage turns it into a stream", async () => {
  for (const accept of ["application/json", "text/html"]) {
    const res = errorResponse(
      new Request("http://localhost/x", { headers: { accept } }),
      408,
      "The request body stalled for 1000 ms",
    );
    const bytes = await res.bytes();
    assert.equal(res.headers.get("content-length"), String(bytes.length));
  }
});
