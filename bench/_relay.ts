/**
 * The benchmarks' floor: the least a `Deno.serve` process can do to relay
 * a request to a worker and its answer back: request head copied as is
 * (plus `X-Forwarded-For`), a body of known length read whole, answers with
 * `Content-Length` only, a keep-alive pool. No chunked bodies, timeouts,
 * retries, limits or header rules: it is not a proxy anyone should run, it
 * is what tqserver's own costs are measured against (`deno-relay` peer).
 *
 * ```sh
 * PORT=8080 UPSTREAM=127.0.0.1:8000 deno run -A bench/_relay.ts
 * ```
 *
 * @module
 */
const port = Number(Deno.env.get("PORT") ?? "8080");
const [upHost = "127.0.0.1", upPort = "8000"] = (Deno.env.get("UPSTREAM") ??
  "127.0.0.1:8000").split(":");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Conn {
  tcp: Deno.TcpConn;
  buf: Uint8Array;
  start: number;
  end: number;
}
const idle: Conn[] = [];

async function fill(c: Conn): Promise<void> {
  if (c.start === c.end) c.start = c.end = 0;
  if (c.end === c.buf.length) {
    const bigger = new Uint8Array(c.buf.length * 2);
    bigger.set(c.buf.subarray(c.start, c.end));
    c.end -= c.start;
    c.start = 0;
    c.buf = bigger;
  }
  const n = await c.tcp.read(c.buf.subarray(c.end));
  if (n === null) throw new Error("worker closed the connection");
  c.end += n;
}

function headEnd(c: Conn): number {
  for (let i = c.start + 3; i < c.end; i++) {
    if (
      c.buf[i] === 10 && c.buf[i - 1] === 13 && c.buf[i - 2] === 10 &&
      c.buf[i - 3] === 13
    ) {
      return i + 1;
    }
  }
  return -1;
}

async function connect(): Promise<Conn> {
  const tcp = await Deno.connect({ hostname: upHost, port: Number(upPort) });
  tcp.setNoDelay(true);
  return { tcp, buf: new Uint8Array(16384), start: 0, end: 0 };
}

Deno.serve(
  { hostname: "127.0.0.1", port, onListen() {} },
  async (req, info) => {
    const c = idle.pop() ?? await connect();
    const url = req.url;
    let head = `${req.method} ${url.slice(url.indexOf("/", 8))} HTTP/1.1\r\n`;
    for (const [name, value] of req.headers) head += `${name}: ${value}\r\n`;
    head += `x-forwarded-for: ${info.remoteAddr.hostname}\r\n\r\n`;
    await c.tcp.write(encoder.encode(head));
    if (req.body !== null) await c.tcp.write(await req.bytes());
    let end = headEnd(c);
    while (end < 0) {
      await fill(c);
      end = headEnd(c);
    }
    const lines = decoder.decode(c.buf.subarray(c.start, end - 4)).split(
      "\r\n",
    );
    const status = Number(lines[0]!.slice(9, 12));
    const headers: [string, string][] = [];
    let length = 0;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "content-length") length = Number(value);
      else if (name !== "connection" && name !== "keep-alive") {
        headers.push([name, value]);
      }
    }
    c.start = end;
    if (length <= 65536) {
      while (c.end - c.start < length) await fill(c);
      const body = c.buf.slice(c.start, c.start + length);
      c.start += length;
      idle.push(c);
      return new Response(body, { status, headers });
    }
    let left = length;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (c.start === c.end) await fill(c);
        const n = Math.min(left, c.end - c.start);
        controller.enqueue(c.buf.slice(c.start, c.start + n));
        c.start += n;
        left -= n;
        if (left === 0) {
          idle.push(c);
          controller.close();
        }
      },
    });
    return new Response(body, { status, headers });
  },
);
