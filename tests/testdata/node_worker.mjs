// A worker on Node's `node:http`, for end-to-end tests. It follows the worker
// contract by hand: listens on 127.0.0.1:$TQ_PORT, answers GET /health, exits
// when its stdin closes. IDLE_MS sets `keepAliveTimeout` (a small value makes
// it close every idle keep-alive connection right after a response).
//
// Paths: /health; /node/gzip (a long text, gzip-encoded when the request's
// Accept-Encoding allows it, like Express's compression()); /node/early413
// (413 before reading the body); /node/crash (exits with code 3); anything
// else: JSON with method, path, the Content-Length and Transfer-Encoding it
// got, Host, and the body's length and sha-256 — sent chunked, or with a
// Content-Length under /node/sized/.
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";

const TEXT = "tqserver passes compressed answers through. ".repeat(500);

const server = createServer((req, res) => {
  const path = req.url.split("?")[0];
  if (path === "/health") return res.end("ok");
  if (path === "/node/crash") process.exit(3);
  if (path === "/node/gzip") {
    if (/\bgzip\b/.test(req.headers["accept-encoding"] ?? "")) {
      const body = gzipSync(TEXT);
      res.writeHead(200, {
        "content-type": "text/plain",
        "content-encoding": "gzip",
        "content-length": body.length,
        vary: "accept-encoding",
      });
      return res.end(body);
    }
    res.writeHead(200, { "content-type": "text/plain" });
    return res.end(TEXT);
  }
  if (path === "/node/early413") {
    res.writeHead(413, {
      "content-type": "application/json",
      connection: "close",
    });
    return res.end('{"error":"too large"}');
  }
  const hash = createHash("sha256");
  let length = 0;
  req.on("data", (chunk) => {
    length += chunk.length;
    hash.update(chunk);
  });
  req.on("end", () => {
    const json = JSON.stringify({
      worker: "node",
      pid: process.pid,
      method: req.method,
      path: req.url,
      content_length: req.headers["content-length"] ?? null,
      transfer_encoding: req.headers["transfer-encoding"] ?? null,
      host: req.headers.host ?? null,
      length,
      sha256: hash.digest("hex"),
    });
    // /node/sized/…: with a Content-Length, as Express's res.send() answers;
    // anything else chunked, as a plain res.writeHead() + res.end() does.
    res.writeHead(200, {
      "content-type": "application/json",
      ...(path.startsWith("/node/sized/")
        ? { "content-length": Buffer.byteLength(json) }
        : {}),
    });
    res.end(json);
  });
});
if (process.env.IDLE_MS) server.keepAliveTimeout = Number(process.env.IDLE_MS);
server.listen(Number(process.env.TQ_PORT), "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
