import { isAbsolute, join } from "node:path";
import {
  compressBytes,
  createTypeMatcher,
  DEFAULT_COMPRESSIBLE_TYPES,
  DEFAULT_MIN_BYTES,
  type Encoding,
  negotiateEncoding,
} from "../compress/mod.ts";
import {
  DEFAULT_STATIC_CACHE_FILE_MAX_BYTES,
  DEFAULT_STATIC_CACHE_MAX_BYTES,
  DEFAULT_STATIC_MAX_AGE_SECONDS,
  DEFAULT_STATIC_PREFIX,
  DEFAULT_STATIC_REVALIDATE_MS,
} from "../config/defaults.ts";
import { type Logger, silentLogger } from "../log/mod.ts";
import { StaticCache, type StaticCacheStats } from "./cache.ts";
import { type FileEntry, resolveFile, stillValid } from "./_entry.ts";
import { isClientPathError } from "./_file_id.ts";
import {
  heldBytes,
  makeVariant,
  type Variant,
  variantEtag,
} from "./_variant.ts";
import { parseStaticPath, rawPathOf } from "./_path.ts";
import { respond, textResponse } from "./_respond.ts";
import { ScratchBuffer } from "./_buffers.ts";

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
  /** Files up to this size are kept in memory with their headers (`server.static.cache_file_max_bytes`). Default 256 KiB. */
  cacheFileMaxBytes?: number;
  /** Memory bound of the cache, least recently used evicted first; 0 = no cache (`server.static.cache_max_bytes`). Default 64 MiB. */
  cacheMaxBytes?: number;
  /** An entry is revalidated with one `stat` at most this often; 0 = every request (`server.static.revalidate_ms`). Default 1000. */
  revalidateMs?: number;
  /** Compress compressible files without a `.br`/`.gz` beside them (`server.compression.enabled`). Default true. */
  compress?: boolean;
  /** Files below this size are not compressed (`server.compression.min_bytes`). Default 1024. */
  compressMinBytes?: number;
  /** Compressible Content-Types (`server.compression.types`). Default: text, JS, JSON, XML, SVG, wasm. */
  compressTypes?: readonly string[];
  /** Milliseconds clock for revalidation. Default `performance.now`. */
  now?: () => number;
}

/** A static file request handler, with its cache, as returned by {@linkcode createStaticHandler}. */
export interface StaticHandler {
  (req: Request): Response | Promise<Response>;
  /** Drops the cached entries of `worker` (all when omitted); returns how many. */
  invalidate(worker?: string): number;
  /** Cache and traffic counters. */
  stats(): StaticCacheStats;
}

const ALLOW = "GET, HEAD";

/** A request path checked by `parseStaticPath`, with its cache key. */
interface ParsedPath {
  worker: string;
  segments: string[];
  trailingSlash: boolean;
  key: string;
}

function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} "${value}" must be a non-negative integer`);
  }
}

/**
 * Creates the handler for `GET|HEAD {urlPrefix}/{worker}/{path}`, which serves
 * `workers/{worker}/public/{path}` (SPEC §8).
 *
 * The raw request path is decoded once and every segment checked: `..`,
 * encoded separators (`%2f`, `%5c`), backslashes, NUL and control characters
 * answer 400, malformed percent-encoding 400, dot files and unknown workers
 * 404. The resolved file (after symlinks) must lie inside the worker's real
 * `public/`, or the answer is 404; so must a `.br`/`.gz` beside it. A
 * directory is served as its `index.html` when the path ends with `/` (a path
 * without it is redirected to add it); there are no listings. A symlink loop,
 * a name too long or a file it may not read is a 404 logged at debug.
 *
 * Resolved paths are cached, and files up to `cacheFileMaxBytes` with their
 * bytes and headers, within `cacheMaxBytes` (LRU). An entry is revalidated
 * with one `stat` of the requested path at most every `revalidateMs`: a file
 * renamed over it (rsync) has a new inode and is re-resolved, with every check
 * above. A file streamed from disk is opened and its `fstat` must match the
 * entry, so even inside the revalidation window a swapped file is never sent
 * under the old checks. {@linkcode StaticHandler.invalidate} drops entries at
 * once (the dev watcher, a SIGHUP check).
 *
 * Answers carry Content-Type (by extension), Content-Length, ETag,
 * Last-Modified, `Cache-Control: public, max-age=N` and `Accept-Ranges:
 * bytes`. Compressible types are sent br or gzip when the client accepts it: a
 * `.br`/`.gz` beside the file first, else compressed once and kept with the
 * entry (or compressed while streaming, for files too large to keep), with
 * `Vary: Accept-Encoding` and an ETag per encoding. Preconditions follow RFC
 * 9110 §13.2.2: `If-Match`/`If-Unmodified-Since` → 412, `If-None-Match`/
 * `If-Modified-Since` → 304. A single byte range → 206 on the identity bytes,
 * unsatisfiable → 416. HEAD answers carry exactly the GET's headers.
 *
 * @throws {TypeError} When `workersDir` is not absolute or `urlPrefix` does not start with `/`.
 * @throws {RangeError} When a size, age or interval is not a non-negative integer.
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
    urlPrefix = DEFAULT_STATIC_PREFIX,
    maxAgeSeconds = DEFAULT_STATIC_MAX_AGE_SECONDS,
    isWorker,
    logger = silentLogger,
    cacheFileMaxBytes = DEFAULT_STATIC_CACHE_FILE_MAX_BYTES,
    cacheMaxBytes = DEFAULT_STATIC_CACHE_MAX_BYTES,
    revalidateMs = DEFAULT_STATIC_REVALIDATE_MS,
    compress = true,
    compressMinBytes = DEFAULT_MIN_BYTES,
    compressTypes = DEFAULT_COMPRESSIBLE_TYPES,
    now = () => performance.now(),
  } = options;
  if (!isAbsolute(workersDir)) {
    throw new TypeError(`Workers dir "${workersDir}" must be absolute`);
  }
  if (!urlPrefix.startsWith("/")) {
    throw new TypeError(`URL prefix "${urlPrefix}" must start with "/"`);
  }
  checkCount("Max age", maxAgeSeconds);
  checkCount("Cache file max bytes", cacheFileMaxBytes);
  checkCount("Revalidate ms", revalidateMs);
  checkCount("Compression min bytes", compressMinBytes);
  const cache = new StaticCache<FileEntry>(cacheMaxBytes);
  const counters = cache.counters;
  const prefix = urlPrefix.replace(/\/+$/, "");
  const cacheControl = `public, max-age=${maxAgeSeconds}`;
  const compressible = createTypeMatcher(compressTypes);
  // Without a cache nothing is kept, bytes included: every file is read from disk.
  const fileMaxBytes = cache.enabled ? cacheFileMaxBytes : -1;
  const scratch = new ScratchBuffer();
  const answer = (
    req: Request,
    entry: FileEntry,
    variant: Variant,
    rangeHeader: string | null,
    head: boolean,
  ) => respond(req, { entry, variant, rangeHeader, head, counters, scratch });

  /** The cached entry for `key` when it is still valid (revalidated with one `stat` when due). */
  function cachedEntry(key: string): FileEntry | undefined {
    const cached = cache.get(key);
    if (cached === undefined) return undefined;
    const t = now();
    if (t - cached.checkedAt >= revalidateMs) {
      counters.revalidations++;
      if (!stillValid(cached)) {
        cache.delete(key);
        return undefined;
      }
      cached.checkedAt = t;
    }
    counters.hits++;
    return cached;
  }

  async function resolve(
    key: string,
    path: ParsedPath,
  ): Promise<FileEntry | "not-found" | "redirect"> {
    counters.misses++;
    const resolved = await resolveFile(
      join(workersDir, path.worker, "public"),
      {
        worker: path.worker,
        segments: path.segments,
        trailingSlash: path.trailingSlash,
        fileMaxBytes,
        cacheControl,
        compressible,
        compress,
        minBytes: compressMinBytes,
        now: now(),
      },
    );
    if (resolved.kind === "file") {
      cache.set(key, resolved.entry);
      return resolved.entry;
    }
    if (resolved.kind === "not-found") {
      logger.debug("static file not found", {
        worker: path.worker,
        reason: resolved.reason,
      });
    }
    return resolved.kind;
  }

  /** The variant for `encoding`, compressing the cached bytes the first time. */
  function variantFor(
    key: string,
    entry: FileEntry,
    encoding: Encoding,
  ): Variant | Promise<Variant> {
    const ready = entry.variants[encoding];
    if (ready !== undefined) return ready;
    const body = entry.identity.body;
    if (body === undefined) return entry.identity;
    let pending = entry.pending[encoding];
    if (pending === undefined) {
      pending = compressBytes(body, encoding).then((bytes) => {
        // Not worth it when it saves nothing: the identity bytes answer instead.
        const variant = bytes.length < body.length
          ? makeVariant(entry, {
            cacheControl,
            encoding,
            etag: variantEtag(entry.id, encoding),
            size: bytes.length,
            body: bytes,
          })
          : null;
        if (variant) {
          entry.variants[encoding] = variant;
          cache.grow(key, entry, heldBytes(variant));
        } else {
          entry.offered = entry.offered.filter((e) => e !== encoding);
        }
        return variant;
      }, (err) => {
        logger.warn("static compression failed", { encoding, error: err });
        entry.offered = entry.offered.filter((e) => e !== encoding);
        return null;
      });
      entry.pending[encoding] = pending;
    }
    return pending.then((variant) => variant ?? entry.identity);
  }

  /** The representation to send: an encoding the client accepts, or the identity bytes. */
  function pickVariant(
    req: Request,
    key: string,
    entry: FileEntry,
    rangeHeader: string | null,
  ): Variant | Promise<Variant> {
    if (entry.offered.length === 0 || rangeHeader !== null) {
      return entry.identity;
    }
    const accept = req.headers.get("accept-encoding");
    // A .br/.gz beside the file beats compressing ourselves (Caddy's `precompressed`).
    const encoding =
      (entry.siblings.length > 0
        ? negotiateEncoding(accept, entry.precompressed)
        : null) ?? negotiateEncoding(accept, entry.offered);
    return encoding === null
      ? entry.identity
      : variantFor(key, entry, encoding);
  }

  // Parsing is pure: a raw path seen before maps to the same worker and segments.
  const parsedPaths = new Map<string, ParsedPath>();
  const PARSED_MAX = 4096;

  function parse(rawPath: string, head: boolean): ParsedPath | Response {
    const memo = parsedPaths.get(rawPath);
    if (memo !== undefined) return memo;
    const parsed = parseStaticPath(rawPath, prefix);
    if (!parsed.ok) {
      logger.debug("static request rejected", {
        path: rawPath,
        reason: parsed.reason,
      });
      return parsed.status === 400
        ? textResponse(400, "Bad request", { head })
        : textResponse(404, "Not found", { head });
    }
    const { worker, segments, trailingSlash } = parsed;
    const path: ParsedPath = {
      worker,
      segments,
      trailingSlash,
      key: worker + "/" + segments.join("/") + (trailingSlash ? "/" : ""),
    };
    if (parsedPaths.size >= PARSED_MAX) parsedPaths.clear();
    parsedPaths.set(rawPath, path);
    return path;
  }

  /** The slow path: resolving on disk, compressing once, or a file that changed under us. */
  async function serveResolving(
    req: Request,
    rawPath: string,
    path: ParsedPath,
    head: boolean,
    first: FileEntry | undefined,
  ): Promise<Response> {
    const rangeHeader = req.headers.get("range");
    let entry = first;
    // A file that changed between the check and the open is resolved afresh, twice at most.
    for (let attempt = 0; attempt < 3; attempt++) {
      if (entry === undefined) {
        const found = cachedEntry(path.key) ?? await resolve(path.key, path);
        if (found === "not-found") {
          return textResponse(404, "Not found", { head });
        }
        if (found === "redirect") {
          const location = rawPath + "/" + new URL(req.url).search;
          return textResponse(301, "Moved permanently", {
            headers: { location },
            head,
          });
        }
        entry = found;
      }
      const variant = await pickVariant(req, path.key, entry, rangeHeader);
      const res = answer(req, entry, variant, rangeHeader, head);
      if (res !== "stale") return res;
      cache.delete(path.key);
      entry = undefined;
    }
    logger.debug("static file keeps changing", { path: rawPath });
    return textResponse(404, "Not found", { head });
  }

  function serve(req: Request, rawPath: string): Response | Promise<Response> {
    const head = req.method === "HEAD";
    const path = parse(rawPath, head);
    if (path instanceof Response) return path;
    if (isWorker && !isWorker(path.worker)) {
      return textResponse(404, "Not found", { head });
    }
    // The hot path stays synchronous: a valid entry whose variant is ready.
    const entry = cachedEntry(path.key);
    if (entry !== undefined) {
      const rangeHeader = req.headers.get("range");
      const variant = pickVariant(req, path.key, entry, rangeHeader);
      if (!(variant instanceof Promise)) {
        const res = answer(req, entry, variant, rangeHeader, head);
        if (res !== "stale") return res;
        cache.delete(path.key);
        return serveResolving(req, rawPath, path, head, undefined);
      }
    }
    return serveResolving(req, rawPath, path, head, entry);
  }

  function failed(req: Request, rawPath: string, err: unknown): Response {
    const head = req.method === "HEAD";
    if (isClientPathError(err)) {
      logger.debug("static file not found", { path: rawPath, error: err });
      return textResponse(404, "Not found", { head });
    }
    logger.error("static file failed", { path: rawPath, error: err });
    return textResponse(500, "Internal server error", { head });
  }

  const serveStatic = function serveStatic(
    req: Request,
  ): Response | Promise<Response> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return textResponse(405, "Method not allowed", {
        headers: { allow: ALLOW },
      });
    }
    const rawPath = rawPathOf(req.url);
    try {
      const res = serve(req, rawPath);
      return res instanceof Promise
        ? res.catch((err) => failed(req, rawPath, err))
        : res;
    } catch (err) {
      return failed(req, rawPath, err);
    }
  } as StaticHandler;
  serveStatic.invalidate = (worker) => cache.invalidate(worker);
  serveStatic.stats = () => cache.stats();
  return serveStatic;
}
