/**
 * The worker of the instances benchmark: every request costs a fixed amount
 * of CPU work (`CPU_ITERATIONS` rounds of xorshift, which the benchmark
 * calibrates to about 1 ms), then answers with the result. On
 * 127.0.0.1:$TQ_PORT; exits when its stdin closes, as the worker contract
 * asks.
 *
 * @module
 */
import { work } from "./_cpu_work.ts";

const port = Number(Deno.env.get("TQ_PORT") ?? Deno.env.get("PORT") ?? "8000");
const iterations = Number(Deno.env.get("CPU_ITERATIONS") ?? "1000000");
let seed = 1;
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen() {} },
  (req) => {
    if (new URL(req.url).pathname === "/health") return new Response("ok");
    seed = work(seed, iterations) || 1;
    return new Response(`${seed}\n`, {
      headers: { "content-type": "text/plain" },
    });
  },
);
Deno.addSignalListener("SIGTERM", () => {
  server.shutdown().then(() => Deno.exit(0));
});
if (Deno.env.get("TQ_MODE")) {
  const buf = new Uint8Array(64);
  while ((await Deno.stdin.read(buf)) !== null) {
    // The server never writes; EOF means it is gone.
  }
  Deno.exit(0);
}
