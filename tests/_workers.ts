// Workers no one here wrote the HTTP stack of, for the proxy's end-to-end
// tests: Python's http.server and Node's node:http (tests/testdata/).
import { AssertionError } from "node:assert";
import { join } from "node:path";
import { concat, REPO } from "./_helpers.ts";

export const PY_WORKER = join(REPO, "tests", "testdata", "py_worker.py");
export const NODE_WORKER = join(REPO, "tests", "testdata", "node_worker.mjs");

/** True when `command` runs (`python3`, `node`). */
export function hasCommand(command: string): boolean {
  try {
    return new Deno.Command(command, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

/** Writes `workers/{name}/bin/{name}`: a shell script that execs `argv` with extra env. */
export function writeScriptWorker(
  root: string,
  name: string,
  argv: string[],
  env: Record<string, string> = {},
): void {
  const dir = join(root, "workers", name, "bin");
  Deno.mkdirSync(dir, { recursive: true });
  Deno.mkdirSync(join(root, "workers", name, "public"), { recursive: true });
  const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v}'\n`)
    .join("");
  const path = join(dir, name);
  Deno.writeTextFileSync(
    path,
    `#!/bin/sh\n${exports}exec ${argv.map((a) => `'${a}'`).join(" ")}\n`,
  );
  Deno.chmodSync(path, 0o755);
}

/** The parsed answer of {@linkcode exchange}. */
export interface RawAnswer {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
  text: string;
}

/** Options of {@linkcode rawExchange}. */
export interface RawExchangeOptions {
  /** How long the whole exchange may take before the connection is closed. Default 10 000 ms. */
  ms?: number;
  /** Stop reading at one whole Content-Length answer rather than at the close. Default false. */
  untilAnswer?: boolean;
}

/**
 * Opens a connection to 127.0.0.1:`port`, writes `send` whole (or lets it talk
 * on the connection first, as a 100-continue client does), then returns
 * every byte that came back until the peer closed, `ms` ran out or (with
 * `untilAnswer`) one whole Content-Length answer came. A reset counts as the
 * close; a failed assertion inside `send` still fails the test.
 */
export async function rawExchange(
  port: number,
  send: Uint8Array | string | ((conn: Deno.Conn) => Promise<void>),
  options: RawExchangeOptions = {},
): Promise<Uint8Array> {
  const { ms = 10_000, untilAnswer = false } = options;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  const timer = setTimeout(() => conn.close(), ms);
  try {
    if (typeof send === "function") {
      await send(conn);
    } else {
      const all = typeof send === "string"
        ? new TextEncoder().encode(send)
        : send;
      for (let at = 0; at < all.length;) {
        at += await conn.write(all.subarray(at));
      }
    }
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      if (untilAnswer && complete(chunks)) break;
    }
  } catch (e) {
    if (e instanceof AssertionError) throw e;
    // Closed by the timer or reset by the peer: what came is the answer.
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  return concat(chunks);
}

/** {@linkcode rawExchange}, its answer as UTF-8 text. */
export async function rawText(
  port: number,
  send: Uint8Array | string | ((conn: Deno.Conn) => Promise<void>),
  options: RawExchangeOptions = {},
): Promise<string> {
  return new TextDecoder().decode(await rawExchange(port, send, options));
}

/**
 * Sends raw bytes on a new connection and parses the one answer: reads until
 * the peer closes, at most `ms`, or (with `untilAnswer`) until one whole
 * Content-Length answer has arrived.
 */
export async function exchange(
  port: number,
  bytes: Uint8Array | string,
  ms = 10_000,
  untilAnswer = false,
): Promise<RawAnswer> {
  return parseAnswer(await rawExchange(port, bytes, { ms, untilAnswer }));
}

/** True when `chunks` hold a whole head and its Content-Length body. */
function complete(chunks: Uint8Array[]): boolean {
  const text = new TextDecoder("latin1").decode(
    new Uint8Array(chunks.flatMap((c) => [...c])),
  );
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
  return length !== null && text.length - end - 4 >= Number(length[1]);
}

/** Parses the last final (non-1xx) answer of a Content-Length-framed raw response. */
export function parseAnswer(all: Uint8Array): RawAnswer {
  const latin1 = new TextDecoder("latin1");
  let offset = 0;
  for (;;) {
    const text = latin1.decode(all.subarray(offset));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) throw new Error(`No answer head in ${JSON.stringify(text)}`);
    const lines = text.slice(0, end).split("\r\n");
    const status = Number(lines[0]!.split(" ")[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers.set(
        line.slice(0, colon).toLowerCase(),
        line.slice(colon + 1).trim(),
      );
    }
    const start = offset + end + 4;
    if (status >= 100 && status < 200) {
      offset = start;
      continue;
    }
    const body = headers.get("transfer-encoding") === "chunked"
      ? dechunk(all.subarray(start))
      : all.slice(
        start,
        start + Number(headers.get("content-length") ?? all.length - start),
      );
    return { status, headers, body, text: new TextDecoder().decode(body) };
  }
}

/** Decodes a chunked body (extensions and trailers ignored). */
function dechunk(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    const eol = bytes.subarray(at).indexOf(10);
    if (eol < 0) break;
    const line = new TextDecoder().decode(bytes.subarray(at, at + eol));
    const size = parseInt(line, 16);
    at += eol + 1;
    if (!(size > 0)) break;
    parts.push(bytes.subarray(at, at + size));
    at += size + 2;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Lower-case hex sha-256 of `bytes`. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** `n` pseudo-random bytes. */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  }
  return out;
}
