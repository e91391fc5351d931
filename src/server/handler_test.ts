import assert from "node:assert/strict";
import { pathnameOf } from "./handler.ts";

Deno.test("pathnameOf returns the raw path without query or fragment", () => {
  assert.equal(pathnameOf("http://h:1/a/b?x=1"), "/a/b");
  assert.equal(pathnameOf("http://h/"), "/");
  assert.equal(pathnameOf("http://h"), "/");
  assert.equal(pathnameOf("http://h/a%2Fb#f"), "/a%2Fb");
});
