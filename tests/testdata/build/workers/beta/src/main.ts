import { greet } from "../../../shared/greet.ts";

const port = Number(Deno.env.get("TQ_PORT") ?? 0);
if (port) {
  // Serves like a worker when given a port; prints and exits otherwise.
  Deno.serve(
    { port, hostname: "127.0.0.1", onListen() {} },
    () => new Response(greet("beta")),
  );
} else {
  console.log(greet("beta"));
}
