import assert from "node:assert/strict";
import {
  rawPathOf,
  routeMatches,
  RouteTable,
  type Upstream,
} from "./route_table.ts";

function upstream(name: string, route: string): Upstream {
  return {
    name,
    route,
    writeTimeoutMs: 1000,
    acquire: () => undefined,
    retryAfterSeconds: () => 1,
  };
}

Deno.test("RouteTable picks the longest route on a path-segment boundary", () => {
  const table = new RouteTable();
  table.set([
    upstream("index", "/"),
    upstream("api", "/api"),
    upstream("users", "/api/users"),
  ]);
  const cases: [string, string][] = [
    ["/", "index"],
    ["/apix", "index"],
    ["/api", "api"],
    ["/api/", "api"],
    ["/api/usersx", "api"],
    ["/api/users", "users"],
    ["/api/users/7", "users"],
  ];
  for (const [path, name] of cases) {
    assert.equal(table.match(path)?.name, name, path);
  }
  table.delete("index");
  assert.equal(table.match("/other"), undefined);
  table.put(upstream("api", "/v2"));
  assert.equal(table.match("/api/x"), undefined);
  assert.equal(table.match("/v2/x")?.name, "api");
});

Deno.test("routeMatches and rawPathOf keep the path as the client sent it", () => {
  assert.equal(routeMatches("/", "/anything"), true);
  assert.equal(routeMatches("/a", "/ab"), false);
  assert.equal(rawPathOf("http://h:1/a/../b?x=1"), "/a/../b");
  assert.equal(rawPathOf("http://h/a%2Fb#f"), "/a%2Fb");
  assert.equal(rawPathOf("http://h"), "/");
});
