/**
 * The worker the proxy benchmark measures, on 127.0.0.1:$PORT (or $TQ_PORT
 * under tqserver): `Hello, World!` for GET, a 10 MiB body for GET /10mb, and
 * for POST it reads the whole body and answers with its length. Under
 * tqserver (`TQ_MODE` set) it exits when its stdin closes, as the worker
 * contract asks.
 *
 * @module
 */
const port = Number(Deno.env.get("TQ_PORT") ?? Deno.env.get("PORT") ?? "8000");
const hello = new TextEncoder().encode("Hello, World!\n");
const big = new Uint8Array(10 * 1024 * 1024).fill(97);
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen() {} },
  async (req) => {
    if (req.method === "POST") {
      const bytes = await req.bytes();
      return new Response(`got ${bytes.length}\n`);
    }
    if (req.url.endsWith("/10mb")) {
      return new Response(big, {
        headers: { "content-type": "application/octet-stream" },
      });
    }
    return new Response(hello, { headers: { "content-type": "text/plain" } });
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
