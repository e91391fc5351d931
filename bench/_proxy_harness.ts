/**
 * Fallback target of the benchmark when `main.ts` cannot run: `createProxy`
 * behind `Deno.serve` with a one-entry route table (`/` → `--upstream`).
 * Logs `proxy harness ready port=N` on stderr once it serves.
 *
 * ```sh
 * deno run -A bench/_proxy_harness.ts --port 8080 --upstream http://127.0.0.1:9000
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createProxy } from "../src/proxy/mod.ts";
import { RouteTable, type UpstreamTarget } from "../src/routes/route_table.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string" },
    upstream: { type: "string" },
  },
});
const origin = values.upstream ?? "http://127.0.0.1:9000";
let inFlight = 0;
const target: UpstreamTarget = {
  origin,
  release() {
    inFlight--;
  },
};
const table = new RouteTable();
table.set([{
  name: "hello",
  route: "/",
  writeTimeoutMs: 30_000,
  acquire() {
    inFlight++;
    return target;
  },
  retryAfterSeconds: () => 1,
}]);
const server = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(values.port ?? "0"),
  onListen({ port }) {
    Deno.stderr.writeSync(
      new TextEncoder().encode(`proxy harness ready port=${port}\n`),
    );
  },
}, createProxy(table));

Deno.addSignalListener("SIGTERM", () => {
  server.shutdown().then(() => Deno.exit(0));
});
