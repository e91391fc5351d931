import { isAbsolute, join, sep } from "node:path";
import { type Logger, silentLogger } from "../log/mod.ts";
import { contentTypeFor } from "./_mime.ts";
import { parseStaticPath, rawPathOf } from "./_path.ts";
import { parseRange } from "./_range.ts";
import { rangeStream } from "./_stream.ts";

/** Options for {@linkcode createStaticHandler}. */
export interface StaticHandlerOptions {
  /** Absolute path of the workers directory (`workers/{name}/public/` is served). Required. */
  workersDir: string;
  /** URL prefix. Default `"/static"`. */
  urlPrefix?: string;
  /** `Cache-Control` max-age in seconds. Default `3600`. */
  maxAgeSeconds?: number;
  /**
   * Returns true when a worker folder of that name is a known worker.
   * Default: any folder with a `public/` directory.
   */
  isWorker?: (name: string) => boolean;
  /** Where rejected and failed requests are logged. Default: silent. */
  logger?: Logger;
}

/** A static file request handler, as returned by {@linkcode createStaticHandler}. */
export type StaticHandler = (req: Request) => Promise<Response>;

const ALLOW = "GET, HEAD";
const INDEX_FILE = "index.html";

function textResponse(
  status: number,
  text: string,
  headers: Record<string, string> = {},
  head = false,
): Response {
  return new Response(head ? null : text + "\n", {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "x-content-type-options": "nosniff",
      ...headers,
    },
  });
}

function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound ||
    err instanceof Deno.errors.NotADirectory ||
    err instanceof Deno.errors.PermissionDenied;
}

/**
 * Resolves every symlink in `path` and returns the real path when it is
 * `root` or inside it, `null` when it escapes, and throws `NotFound` when it
 * does not exist.
 */
async function realPathInside(
  root: string,
  path: string,
): Promise<string | null> {
  const real = await Deno.realPath(path);
  return real === root || real.startsWith(root + sep) ? real : null;
}

/** True when a conditional GET may answer 304 (RFC 9110 §13.2.2). */
function notModified(
  headers: Headers,
  etag: string,
  mtime: Date | null,
): boolean {
  const ifNoneMatch = headers.get("if-none-match");
  // If-None-Match takes precedence: If-Modified-Since is then ignored.
  if (ifNoneMatch !== null) {
    if (ifNoneMatch.trim() === "*") return true;
    // Weak comparison: W/"x" matches "x".
    const ours = etag.replace(/^W\//, "");
    return ifNoneMatch.split(",").some((tag) =>
      tag.trim().replace(/^W\//, "") === ours
    );
  }
  const ifModifiedSince = headers.get("if-modified-since");
  if (ifModifiedSince === null || mtime === null) return false;
  const since = Date.parse(ifModifiedSince);
  if (Number.isNaN(since)) return false;
  return Math.floor(mtime.getTime() / 1000) <= Math.floor(since / 1000);
}

/** True when a `Range` may be honoured under `If-Range` (RFC 9110 §13.1.5). */
function ifRangeHolds(
  value: string | null,
  etag: string,
  mtime: Date | null,
): boolean {
  if (value === null) return true;
  const trimmed = value.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith("W/")) {
    return trimmed === etag; // strong comparison; a weak tag never matches
  }
  if (mtime === null) return false;
  return Date.parse(trimmed) === Math.floor(mtime.getTime() / 1000) * 1000;
}

/**
 * Creates the handler for `GET|HEAD {urlPrefix}/{worker}/{path}`, which serves
 * `workers/{worker}/public/{path}` (SPEC §8).
 *
 * The raw request path is decoded once and every segment checked: `..`,
 * encoded separators (`%2f`, `%5c`), backslashes, NUL and control characters
 * answer 400, malformed percent-encoding 400, dot files and unknown workers
 * 404. The resolved file (after symlinks) must lie inside the worker's real
 * `public/`, or the answer is 404. A directory is served as its `index.html`
 * when the path ends with `/` (a path without it is redirected to add it);
 * with no `index.html` a directory is 404: there are no listings.
 *
 * Answers carry Content-Type (by extension), Content-Length, ETag, Last-Modified,
 * `Cache-Control: public, max-age=N` and `Accept-Ranges: bytes`; conditional
 * requests get 304, a single byte range 206 and an unsatisfiable one 416.
 * Bodies are streamed from the file, which is closed on every path.
 *
 * @throws {TypeError} When `workersDir` is not absolute or `urlPrefix` does not start with `/`.
 * @throws {RangeError} When `maxAgeSeconds` is not a non-negative integer.
 *
 * @example
 * ```ts
 * const serveStatic = createStaticHandler({ workersDir: "/srv/app/workers" });
 * Deno.serve((req) => serveStatic(req));
 * ```
 */
export function createStaticHandler(
  options: StaticHandlerOptions,
): StaticHandler {
  const {
    workersDir,
    urlPrefix = "/static",
    maxAgeSeconds = 3600,
    isWorker,
    logger = silentLogger,
  } = options;
  if (!isAbsolute(workersDir)) {
    throw new TypeError(`Workers dir "${workersDir}" must be absolute`);
  }
  if (!urlPrefix.startsWith("/")) {
    throw new TypeError(`URL prefix "${urlPrefix}" must start with "/"`);
  }
  if (!Number.isSafeInteger(maxAgeSeconds) || maxAgeSeconds < 0) {
    throw new RangeError(
      `Max age "${maxAgeSeconds}" must be a non-negative integer`,
    );
  }
  const prefix = urlPrefix.replace(/\/+$/, "");
  const cacheControl = `public, max-age=${maxAgeSeconds}`;

  async function serve(req: Request, rawPath: string): Promise<Response> {
    const head = req.method === "HEAD";
    const notFound = () => textResponse(404, "Not found", {}, head);
    const parsed = parseStaticPath(rawPath, prefix);
    if (!parsed.ok) {
      logger.debug("static request rejected", {
        path: rawPath,
        reason: parsed.reason,
      });
      return parsed.status === 400
        ? textResponse(400, "Bad request", {}, head)
        : notFound();
    }
    const { worker, segments, trailingSlash } = parsed;
    if (isWorker && !isWorker(worker)) return notFound();

    const root = await Deno.realPath(join(workersDir, worker, "public"));
    if (!(await Deno.stat(root)).isDirectory) return notFound();
    let target = await realPathInside(root, join(root, ...segments));
    if (target === null) {
      logger.warn("static path escapes public", { worker, path: rawPath });
      return notFound();
    }
    const info = await Deno.stat(target);
    if (info.isDirectory) {
      const index = await realPathInside(root, join(target, INDEX_FILE))
        .catch((err) => {
          if (isNotFound(err)) return null;
          throw err;
        });
      if (index === null || !(await Deno.stat(index)).isFile) {
        return notFound();
      }
      if (!trailingSlash) {
        const location = rawPath + "/" + new URL(req.url).search;
        return textResponse(301, "Moved permanently", { location }, head);
      }
      target = index;
    } else if (!info.isFile || trailingSlash) {
      // FIFOs, sockets and devices are never opened (a FIFO would block).
      return notFound();
    }
    return await sendFile(req, target, head);
  }

  async function sendFile(
    req: Request,
    path: string,
    head: boolean,
  ): Promise<Response> {
    const file = await Deno.open(path, { read: true });
    let handedOff = false;
    try {
      // Headers come from the open handle, so they describe the bytes sent.
      const stat = await file.stat();
      if (!stat.isFile) return textResponse(404, "Not found", {}, head);
      const { size, mtime } = stat;
      const etag = `"${(mtime?.getTime() ?? 0).toString(16)}-${
        size.toString(16)
      }"`;
      const headers = new Headers({
        "cache-control": cacheControl,
        "etag": etag,
      });
      if (mtime) headers.set("last-modified", mtime.toUTCString());
      if (notModified(req.headers, etag, mtime)) {
        return new Response(null, { status: 304, headers });
      }
      headers.set("accept-ranges", "bytes");
      let range = parseRange(req.headers.get("range"), size);
      if (!ifRangeHolds(req.headers.get("if-range"), etag, mtime)) {
        range = { kind: "none" };
      }
      if (range.kind === "unsatisfiable") {
        return textResponse(416, "Range not satisfiable", {
          "content-range": `bytes */${size}`,
          "accept-ranges": "bytes",
        }, head);
      }
      headers.set("content-type", contentTypeFor(path));
      headers.set("x-content-type-options", "nosniff");
      let status = 200;
      let body: ReadableStream<Uint8Array> | null = null;
      if (range.kind === "range") {
        const length = range.end - range.start + 1;
        status = 206;
        headers.set(
          "content-range",
          `bytes ${range.start}-${range.end}/${size}`,
        );
        headers.set("content-length", String(length));
        if (!head) body = rangeStream(file, range.start, length);
      } else {
        headers.set("content-length", String(size));
        // file.readable closes the file at its end and on cancel.
        if (!head) body = file.readable;
      }
      handedOff = body !== null;
      return new Response(body, { status, headers });
    } finally {
      if (!handedOff) file.close();
    }
  }

  return async function serveStatic(req: Request): Promise<Response> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return textResponse(405, "Method not allowed", { allow: ALLOW });
    }
    const rawPath = rawPathOf(req.url);
    try {
      return await serve(req, rawPath);
    } catch (err) {
      const head = req.method === "HEAD";
      if (isNotFound(err)) return textResponse(404, "Not found", {}, head);
      logger.error("static file failed", { path: rawPath, error: err });
      return textResponse(500, "Internal server error", {}, head);
    }
  };
}
