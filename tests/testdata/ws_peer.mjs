// A WebSocket peer on Node's `ws` package (not Deno on both ends), for the
// proxy's end-to-end tests. `ws` is loaded from $TQ_WS_DIR/node_modules (the
// test installs it in its temp dir).
//
// As a worker (no argument): follows the worker contract by hand (listens
// on 127.0.0.1:$TQ_PORT, answers GET /health, exits when stdin closes).
//   .../closes       JSON list of the close frames its sockets received
//   .../events       SSE: "data: tick N" every 100 ms, for ever
//   .../ws           a WebSocket; each text message is a command:
//                      "close CODE REASON"  closes with that code and reason
//                      "big N"              sends a binary message of N bytes
//                      "pid"                answers with its pid
//                    anything else is echoed as "echo: MSG"; a binary
//                    message is answered "bytes: N"
//
// As a client (`client URL`): reads commands from stdin, one per line
// ("send TEXT", "sendbytes N", "close CODE REASON", "terminate"), and prints
// each event as a JSON line: {"event":"open"}, {"event":"message",...},
// {"event":"close","code":N,"reason":"..."}, {"event":"error",...}.
import { createRequire } from "node:module";
import { createServer } from "node:http";
import { createInterface } from "node:readline";

const require = createRequire(`${process.env.TQ_WS_DIR}/`);
const { WebSocket, WebSocketServer } = require("ws");

if (process.argv[2] === "client") {
  const ws = new WebSocket(process.argv[3], { maxPayload: 0 });
  const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");
  ws.on("open", () => say({ event: "open" }));
  ws.on("message", (data, isBinary) =>
    say(
      isBinary
        ? { event: "message", bytes: data.length }
        : { event: "message", text: data.toString() },
    ));
  ws.on("close", (code, reason) => {
    say({ event: "close", code, reason: reason.toString() });
    process.exit(0);
  });
  ws.on("error", (err) => say({ event: "error", message: String(err) }));
  createInterface({ input: process.stdin }).on("line", (line) => {
    const [command, ...rest] = line.split(" ");
    if (command === "send") ws.send(rest.join(" "));
    else if (command === "sendbytes") ws.send(Buffer.alloc(Number(rest[0])));
    else if (command === "close") {
      ws.close(Number(rest[0]), rest.slice(1).join(" "));
    } else if (command === "terminate") ws.terminate();
  });
} else {
  const closes = [];
  const wss = new WebSocketServer({ noServer: true, maxPayload: 0 });
  const server = createServer((req, res) => {
    const path = req.url.split("?")[0];
    if (path === "/health") return res.end("ok");
    if (path.endsWith("/closes")) {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify(closes));
    }
    if (path.endsWith("/events")) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      let n = 0;
      const timer = setInterval(() => res.write(`data: tick ${n++}\n\n`), 100);
      res.on("close", () => clearInterval(timer));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  server.on("upgrade", (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data, isBinary) => {
        if (isBinary) return ws.send(`bytes: ${data.length}`);
        const [command, ...rest] = data.toString().split(" ");
        if (command === "close") {
          ws.close(Number(rest[0]), rest.slice(1).join(" "));
        } else if (command === "big") ws.send(Buffer.alloc(Number(rest[0])));
        else if (command === "pid") ws.send(String(process.pid));
        else ws.send(`echo: ${data}`);
      });
      ws.on(
        "close",
        (code, reason) => closes.push({ code, reason: reason.toString() }),
      );
    });
  });
  server.listen(Number(process.env.TQ_PORT), "127.0.0.1");
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}
