import assert from "node:assert/strict";
import { createPublicHandler } from "./handler.ts";
import { RouteTable } from "../routes/mod.ts";

const info = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
  completed: Promise.resolve(),
} as Deno.ServeHandlerInfo<Deno.NetAddr>;

function request(path: string): Request {
  return new Request(`http://localhost${path}`, {
    headers: { host: "localhost" },
  });
}

Deno.test("dev intercept answers before the proxy (a new worker's building page does not wait for its start)", async () => {
  let proxied = 0;
  let transformed = 0;
  const handler = createPublicHandler({
    proxy: () => {
      proxied++;
      return Promise.resolve(new Response("from worker"));
    },
    routes: new RouteTable(),
    notFound: () => new Response("nf", { status: 404 }),
    dev: {
      handle: () => new Response("tq"),
      intercept: (pathname) =>
        pathname.startsWith("/fresh") ? new Response("building") : undefined,
      transform: (res) => {
        transformed++;
        return res;
      },
    },
  });
  assert.equal(
    await (await handler(request("/fresh/x"), info)).text(),
    "building",
  );
  assert.equal(proxied, 0, "the proxy is not asked");
  assert.equal(transformed, 0, "the page is not rewritten again");
  assert.equal(
    await (await handler(request("/other"), info)).text(),
    "from worker",
  );
  assert.equal(proxied, 1);
  assert.equal(transformed, 1);
});

Deno.test("a proxied request's route is matched once, for the metrics and the proxy alike", async () => {
  const table = new RouteTable();
  table.set([{
    name: "api",
    route: "/api",
    writeTimeoutMs: 1000,
    acquire: () => undefined,
    retryAfterSeconds: () => 1,
  }]);
  let matches = 0;
  const routes = {
    match(path: string) {
      matches++;
      return table.match(path);
    },
  };
  const seen: (string | undefined)[] = [];
  const handler = createPublicHandler({
    proxy: (_req, _info, ctx) => {
      seen.push(ctx.upstream?.name);
      return Promise.resolve(new Response("from worker"));
    },
    routes,
    notFound: () => new Response("nf", { status: 404 }),
  });
  const ctx = handler.route(request("/api/x"), info);
  assert.equal(ctx.worker, "api", "the metrics' name comes from the match");
  await handler(request("/api/x"), info, ctx);
  assert.equal(matches, 1);
  assert.deepEqual(seen, ["api"]);
  const missing = await handler(
    new Request("http://localhost/api/x"),
    info,
  );
  assert.equal(
    missing.status,
    400,
    "a request without Host never reaches the proxy",
  );
  assert.deepEqual(seen, ["api"]);
});
