import assert from "node:assert/strict";
import { type AccessEntry, AccessLog, formatAccess } from "./access_log.ts";

const entry: AccessEntry = {
  time: new Date("2026-10-10T13:55:36.120Z"),
  requestId: "r-1",
  client: "10.0.0.7",
  method: "GET",
  path: '/a?q="x"',
  worker: "index",
  status: 200,
  bytes: 2326,
  ms: 1.25,
  referer: "",
  userAgent: "curl/8.0",
};

Deno.test("formatAccess writes the combined format with request id, worker and ms", () => {
  assert.equal(
    formatAccess(entry, "combined"),
    `10.0.0.7 - - [10/Oct/2026:13:55:36 +0000] "GET /a?q=\\x22x\\x22 HTTP/1.1" 200 2326 "-" "curl/8.0" rid=r-1 worker=index ms=1.25`,
  );
  assert.deepEqual(JSON.parse(formatAccess(entry, "json")), {
    time: "2026-10-10T13:55:36.120Z",
    request_id: "r-1",
    client: "10.0.0.7",
    method: "GET",
    path: '/a?q="x"',
    worker: "index",
    status: 200,
    bytes: 2326,
    duration_ms: 1.25,
    referer: "",
    user_agent: "curl/8.0",
  });
});

Deno.test("AccessLog writes one line per entry into the day's file", () => {
  const dir = Deno.makeTempDirSync();
  let now = new Date("2026-10-10T23:59:59Z");
  const log = new AccessLog(`${dir}/access_{date}.log`, { now: () => now });
  log.write(entry);
  now = new Date("2026-10-11T00:00:00Z");
  log.write(entry);
  log.write(entry);
  log.close();
  assert.equal(
    Deno.readTextFileSync(`${dir}/access_2026-10-10.log`).split("\n").length,
    2,
  );
  assert.equal(
    Deno.readTextFileSync(`${dir}/access_2026-10-11.log`).split("\n").length,
    3,
  );
  Deno.removeSync(dir, { recursive: true });
});
