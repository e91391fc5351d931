/**
 * The static benchmark's floor: a bare Deno.serve answering
 * `/static/index/{path}` with the bytes of `$PUBLIC/{path}` held in memory
 * (read once) and the headers tqserver sends: what Deno.serve costs to send
 * a file already in memory, with no path checks, revalidation or
 * conditionals (`deno-floor` target of `bench/static_bench.ts`).
 *
 * @module
 */
import { join } from "node:path";

const port = Number(Deno.env.get("PORT") ?? "8080");
const pub = Deno.env.get("PUBLIC") ?? ".";
const files = new Map<
  string,
  { body: Uint8Array<ArrayBuffer>; headers: [string, string][] }
>();

Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req) => {
  const url = req.url;
  const path = url.slice(url.indexOf("/static/index/") + 14);
  let file = files.get(path);
  if (file === undefined) {
    const info = Deno.statSync(join(pub, path));
    file = {
      body: Deno.readFileSync(join(pub, path)),
      headers: [
        [
          "content-type",
          path.endsWith(".css")
            ? "text/css; charset=utf-8"
            : "application/octet-stream",
        ],
        [
          "etag",
          `"${info.mtime!.getTime().toString(16)}-${info.size.toString(16)}"`,
        ],
        ["last-modified", info.mtime!.toUTCString()],
        ["cache-control", "public, max-age=3600"],
        ["accept-ranges", "bytes"],
        ["x-content-type-options", "nosniff"],
      ],
    };
    files.set(path, file);
  }
  return new Response(file.body, { headers: file.headers });
});
