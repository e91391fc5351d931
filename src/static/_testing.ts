// Folder-private test helpers: a worker tree with public/, private/, symlinks and dot files.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createStaticHandler,
  type StaticHandler,
  type StaticHandlerOptions,
} from "./mod.ts";

export const SECRET = "TOP-SECRET-7f3a";
export const CSS = "body { color: red; }\n";
export const BIG_SIZE = 300_000;

export interface Tree {
  dir: string;
  workersDir: string;
  big: Uint8Array;
  pub: string;
  handler: StaticHandler;
}

/**
 * workers/index/{public,private,src,bin}, workers/nopublic/ and a file
 * outside the workers dir; public/ holds symlinks pointing in and out.
 */
export async function makeTree(options: Partial<StaticHandlerOptions> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "tq_static_" });
  const workersDir = join(dir, "workers");
  const base = join(workersDir, "index");
  const pub = join(base, "public");
  for (const sub of ["nested/deep", "empty", "docs"]) {
    await Deno.mkdir(join(pub, sub), { recursive: true });
  }
  for (const sub of ["private", "src", "bin"]) {
    await Deno.mkdir(join(base, sub), { recursive: true });
  }
  await Deno.mkdir(join(workersDir, "nopublic"), { recursive: true });
  const big = new Uint8Array(BIG_SIZE).map((_, i) => (i * 7 + 3) % 251);
  await Deno.writeTextFile(join(pub, "app.css"), CSS);
  await Deno.writeTextFile(join(pub, "hello.txt"), "hello world");
  await Deno.writeTextFile(join(pub, "data.unknownext"), "raw");
  await Deno.writeFile(join(pub, "big.bin"), big);
  await Deno.writeTextFile(join(pub, "nested/deep/mod.js"), "export {};\n");
  await Deno.writeTextFile(join(pub, "docs/index.html"), "<h1>docs</h1>");
  await Deno.writeTextFile(join(pub, "%2e%2e"), "literal name");
  await Deno.writeTextFile(join(pub, "café.txt"), "utf-8 name");
  await Deno.writeTextFile(join(pub, ".env"), SECRET);
  await Deno.writeTextFile(join(base, "private/secret.txt"), SECRET);
  await Deno.writeTextFile(join(base, "src/main.ts"), `// ${SECRET}`);
  await Deno.writeTextFile(join(base, "bin/index"), SECRET);
  await Deno.writeTextFile(join(dir, "outside.txt"), SECRET);
  await Deno.symlink(join(base, "private/secret.txt"), join(pub, "link_out"));
  await Deno.symlink(join(base, "private"), join(pub, "link_dir_out"));
  await Deno.symlink("app.css", join(pub, "link_in.css"));
  const handler = createStaticHandler({
    workersDir,
    maxAgeSeconds: 60,
    ...options,
  });
  return { dir, workersDir, pub, big, handler } satisfies Tree;
}

/**
 * Files under `dir` this process holds open, read from /proc/self/fd. Deno's
 * resource sanitizer does not track file handles, so leaks are checked here.
 */
export async function openFilesUnder(dir: string): Promise<string[]> {
  const open: string[] = [];
  try {
    for await (const entry of Deno.readDir("/proc/self/fd")) {
      const target = await Deno.readLink(`/proc/self/fd/${entry.name}`)
        .catch(() => "");
      if (target.startsWith(dir)) open.push(target);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return open;
}

export async function withTree(
  fn: (tree: Tree) => Promise<void>,
  options: Partial<StaticHandlerOptions> = {},
): Promise<void> {
  const tree = await makeTree(options);
  try {
    await fn(tree);
    // Every path (HEAD, 304, 416, errors, cancelled bodies) closes its file.
    assert.deepEqual(await openFilesUnder(tree.dir), []);
  } finally {
    await Deno.remove(tree.dir, { recursive: true });
  }
}

/** Options for {@linkcode get}. */
export interface GetOptions {
  /** The request method. Default `GET`. */
  method?: string;
}

/** A request for `path` on `http://localhost` with `headers`. */
export function get(
  path: string,
  headers: HeadersInit = {},
  options: GetOptions = {},
): Request {
  const { method = "GET" } = options;
  return new Request("http://localhost" + path, { method, headers });
}

/** Raw request targets and the status a raw (unnormalised) path must get. */
export const TRAVERSALS: [string, 400 | 404][] = [
  ["/static/index/../private/secret.txt", 400],
  ["/static/index/%2e%2e/private/secret.txt", 400],
  ["/static/index/%2E%2E/private/secret.txt", 400],
  ["/static/index/.%2e/private/secret.txt", 400],
  ["/static/index/%2e./src/main.ts", 400],
  ["/static/index/..%2fprivate%2fsecret.txt", 400],
  ["/static/index/%2e%2e%2fprivate%2fsecret.txt", 400],
  ["/static/index/..%5cprivate%5csecret.txt", 400],
  ["/static/index/..\\private\\secret.txt", 400],
  ["/static/index/link_out%00.css", 400],
  ["/static/index/%00", 400],
  ["/static/index/%252e%252e%252fprivate%252fsecret.txt", 404],
  ["/static/index//etc/passwd", 404],
  ["/static//etc/passwd", 404],
  ["/static/index/../../private", 400],
  ["/static/index/nested/../../private/secret.txt", 400],
  ["/static/index/%2e%2e/%2e%2e/outside.txt", 400],
  ["/static/index/link_out", 404],
  ["/static/index/link_dir_out/secret.txt", 404],
  ["/static/index/.env", 404],
  ["/static/nope/app.css", 404],
  ["/static/nopublic/x", 404],
  ["/static/Index/app.css", 404],
  ["/static/../index/private/secret.txt", 400],
  ["/static/%2e%2e/index/private/secret.txt", 400],
  ["/static/..%2findex%2fprivate%2fsecret.txt", 400],
  ["/static/index/%", 400],
  ["/static/index/%zz", 400],
  ["/static/index/%c3%28", 400],
];

export async function rawRequest(
  port: number,
  target: string,
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    await conn.write(new TextEncoder().encode(
      `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
    ));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16 * 1024);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      chunks.push(buf.slice(0, n));
    }
    return new TextDecoder().decode(
      new Uint8Array(chunks.flatMap((chunk) => [...chunk])),
    );
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed by the timeout above, which made the read end.
    }
  }
}
