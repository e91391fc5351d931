/**
 * Spooled-upload benchmark: a 50 MiB chunked POST (64 KiB chunks, raw TCP)
 * through tqserver, which spools a chunked body past
 * `server.request_buffer_bytes` to a file and sends it with its
 * Content-Length, against nginx doing the same (`client_body_temp_path`,
 * `proxy_request_buffering on`, its defaults), both in front of the same
 * worker (`bench/_hello.ts`, which reads the body and answers its length).
 * Rounds interleaved; the median MB/s of each and their ratio are printed.
 *
 * ```sh
 * deno task bench:spool
 * deno run -A bench/spool_bench.ts --rounds 7 --mib 50
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  hasCommand,
  type Peer,
  startDirect,
  startNginx,
  startTqserver,
} from "./_peers.ts";

const args = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    mib: { type: "string", default: "50" },
  },
});
const rounds = Number(args.values.rounds);
const size = Number(args.values.mib) * 1024 * 1024;
const CHUNK = 64 * 1024;
const encoder = new TextEncoder();

/** The whole request, framed chunked, built once. */
function chunkedRequest(host: string): Uint8Array {
  const head = encoder.encode(
    `POST /upload HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
  );
  const sizeLine = encoder.encode(CHUNK.toString(16) + "\r\n");
  const crlf = encoder.encode("\r\n");
  const end = encoder.encode("0\r\n\r\n");
  const chunks = Math.ceil(size / CHUNK);
  const out = new Uint8Array(
    head.length + chunks * (sizeLine.length + CHUNK + 2) + end.length,
  );
  out.set(head);
  let at = head.length;
  for (let i = 0; i < chunks; i++) {
    out.set(sizeLine, at);
    at += sizeLine.length;
    out.fill(97, at, at + CHUNK);
    at += CHUNK;
    out.set(crlf, at);
    at += 2;
  }
  out.set(end, at);
  return out;
}

/** One upload; MB/s (10^6 bytes) from the first byte sent to the whole answer. */
async function upload(peer: Peer, request: Uint8Array): Promise<number> {
  const url = new URL(peer.base);
  const started = performance.now();
  const conn = await Deno.connect({
    hostname: url.hostname,
    port: Number(url.port),
  });
  const timer = setTimeout(() => conn.close(), 120_000);
  let answer = "";
  try {
    const reading = (async () => {
      const buf = new Uint8Array(4096);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        answer += new TextDecoder().decode(buf.subarray(0, n));
      }
    })();
    for (let at = 0; at < request.length;) {
      at += await conn.write(request.subarray(at, at + 1024 * 1024));
    }
    await reading;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the peer.
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (!answer.startsWith("HTTP/1.1 200") || !answer.includes(`got ${size}`)) {
    throw new Error(
      `${peer.name}: the worker did not get ${size} bytes: ${
        JSON.stringify(answer.slice(0, 300))
      }`,
    );
  }
  return size / 1e6 / seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const direct = await startDirect();
const peers: Peer[] = [await startTqserver()];
if (await hasCommand("nginx")) {
  peers.push(await startNginx(direct.base, "client_max_body_size 0;"));
} else console.log("nginx not found: only tqserver is measured");
try {
  const request = chunkedRequest("bench.test");
  const results = new Map<string, number[]>(peers.map((p) => [p.name, []]));
  // One warm-up upload each (JIT, page cache, nginx's temp dir).
  for (const peer of peers) await upload(peer, request);
  for (let round = 0; round < rounds; round++) {
    for (const peer of peers) {
      results.get(peer.name)!.push(await upload(peer, request));
    }
  }
  console.log(
    `spooled upload: ${
      size / 1024 / 1024
    } MiB chunked POST, median of ${rounds} (MB/s)`,
  );
  for (const [name, values] of results) {
    console.log(
      `  ${name.padEnd(9)} ${median(values).toFixed(0).padStart(6)} MB/s  (${
        values.map((v) => v.toFixed(0)).join(", ")
      })`,
    );
  }
  const tq = results.get("tqserver");
  const ngx = results.get("nginx");
  if (tq && ngx) {
    console.log(
      `  tqserver / nginx = ${(median(tq) / median(ngx)).toFixed(2)}`,
    );
  }
} finally {
  for (const peer of peers) await peer.stop();
  await direct.stop();
}
