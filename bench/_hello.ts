/**
 * The hello-world worker the benchmark measures: answers every request with
 * `Hello, World!` on 127.0.0.1:$PORT. Under tqserver (`TQ_MODE` set) it exits
 * when its stdin closes, as the worker contract asks.
 *
 * @module
 */
const port = Number(Deno.env.get("PORT") ?? "8000");
const body = new TextEncoder().encode("Hello, World!\n");
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen() {} },
  () => new Response(body, { headers: { "content-type": "text/plain" } }),
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
