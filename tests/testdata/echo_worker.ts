// A worker for end-to-end tests that follows the worker contract by hand (no SDK),
// like any non-TypeScript worker would. Behaviour by path:
//   /health            200, X-TQ-Reload when RELOAD_SIGNAL is set; 500 when {base}/unhealthy-pid names this pid
//   /ws                a WebSocket echoing "{tag}: {message}"
//   /slow?ms=N         answers after N ms
//   /events            an event stream that sends one event and never ends
//   /crash             exits with code 3
//   /gzip              a gzip-compressed text body
//   /cookies           two Set-Cookie headers
//   /redirect          302 to /elsewhere
//   /html              an HTML page
//   /private           the content of private/message.txt (cached; cache cleared on the reload signal)
//   /say?text=T        prints T to stdout (worker output for the log tests)
//   anything else      JSON echo of method, path, query, headers, body sha-256 and length, tag, pid
// Env: IGNORE_TERM ignores SIGTERM; ABRUPT_STOP exits at once on SIGTERM (no drain).
const port = Number(Deno.env.get("TQ_PORT") ?? Deno.env.get("PORT"));
const tag = Deno.env.get("TAG") ?? "v1";
const reloadSignal = Deno.env.get("RELOAD_SIGNAL") as Deno.Signal | undefined;
const base = Deno.env.get("TQ_WORKER_BASE") ?? Deno.cwd();
let privateCache: string | undefined;
let reloads = 0;

if (reloadSignal) {
  Deno.addSignalListener(reloadSignal, () => {
    privateCache = undefined;
    reloads++;
  });
}

async function hex(data: ArrayBuffer): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen() {} },
  async (req) => {
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === "/health") {
      if (Deno.env.get("FAIL_HEALTH")) {
        return new Response("broken", {
          status: 500,
        });
      }
      // A test makes one running instance sick by writing its pid here.
      try {
        const sick = Deno.readTextFileSync(`${base}/unhealthy-pid`).trim();
        if (sick === String(Deno.pid)) {
          return new Response("sick", { status: 500 });
        }
      } catch {
        // No such file: healthy.
      }
      const headers = new Headers();
      if (reloadSignal) headers.set("x-tq-reload", reloadSignal);
      return new Response("ok", { headers });
    }
    // `?status=503`: answers with that status (counted answers by class).
    const status = Number(url.searchParams.get("status") ?? "");
    if (status >= 200 && status <= 599) {
      return new Response(`status ${status}`, { status });
    }
    if (path.endsWith("/ws") && req.headers.get("upgrade") === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`${tag}: ${e.data}`);
      return response;
    }
    if (path.endsWith("/events")) {
      const event = new TextEncoder().encode(`data: ${tag}\n\n`);
      return new Response(
        new ReadableStream({ start: (c) => c.enqueue(event) }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    if (path.endsWith("/slow")) {
      await new Promise((r) =>
        setTimeout(r, Number(url.searchParams.get("ms") ?? 500))
      );
      return new Response(`slow ${tag}`);
    }
    if (path.endsWith("/crash")) {
      setTimeout(() => Deno.exit(3), 10);
      return new Response("crashing");
    }
    if (path.endsWith("/gzip")) {
      const text = "compressed hello ".repeat(200);
      const gz = await new Response(
        new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
      ).arrayBuffer();
      return new Response(gz, {
        headers: { "content-encoding": "gzip", "content-type": "text/plain" },
      });
    }
    if (path.endsWith("/cookies")) {
      const headers = new Headers();
      headers.append("set-cookie", "a=1; Path=/");
      headers.append("set-cookie", "b=2; Path=/; HttpOnly");
      return new Response("cookies", { headers });
    }
    if (path.endsWith("/redirect")) {
      return new Response(null, {
        status: 302,
        headers: { location: "/elsewhere" },
      });
    }
    if (path.endsWith("/html")) {
      return new Response(
        `<!doctype html><html><body><h1>${tag}</h1></body></html>`,
        {
          headers: { "content-type": "text/html; charset=utf-8" },
        },
      );
    }
    if (path.endsWith("/say")) {
      console.log(url.searchParams.get("text") ?? "");
      return new Response("said");
    }
    if (path.endsWith("/private")) {
      privateCache ??= await Deno.readTextFile(`${base}/private/message.txt`);
      return new Response(`${privateCache} reloads=${reloads}`);
    }
    const body = req.body ? await req.arrayBuffer() : new ArrayBuffer(0);
    return Response.json({
      tag,
      pid: Deno.pid,
      method: req.method,
      path,
      rawPath: req.url.slice(req.url.indexOf("/", 8)),
      query: url.search,
      headers: Object.fromEntries(req.headers),
      bodyLength: body.byteLength,
      bodySha256: await hex(body),
      env: {
        name: Deno.env.get("TQ_WORKER_NAME"),
        route: Deno.env.get("TQ_WORKER_ROUTE"),
        mode: Deno.env.get("TQ_MODE"),
        base: Deno.env.get("TQ_WORKER_BASE"),
        extra: Deno.env.get("EXTRA"),
        v8flags: Deno.env.get("DENO_V8_FLAGS"),
      },
    });
  },
);

const stop = () => server.shutdown();
if (Deno.env.get("IGNORE_TERM")) {
  // A worker that never stops by itself: only SIGKILL ends it.
  Deno.addSignalListener("SIGTERM", () => console.log("ignoring SIGTERM"));
} else if (Deno.env.get("ABRUPT_STOP")) {
  // A worker that does not drain: whatever is in flight is cut.
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
} else Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
// stdin EOF: the server died.
(async () => {
  const buf = new Uint8Array(64);
  while ((await Deno.stdin.read(buf)) !== null) { /* never written */ }
  await server.shutdown();
  Deno.exit(0);
})();
await server.finished;
Deno.exit(0);
