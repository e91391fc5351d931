// Folder-private: resolving a static path to a cache entry, safely.
import { join, sep } from "node:path";
import { type Encoding, ETAG_SUFFIX } from "../compress/mod.ts";
import { contentTypeFor } from "./mime.ts";

/** The identity of a file's version: an rsync-style rename changes `ino`. */
export interface FileId {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

/** One encoding of a file: its headers, and its bytes when held in memory. */
export interface Variant {
  encoding: Encoding | null;
  etag: string;
  /** Body length; -1 when compressed while streaming (unknown). */
  size: number;
  /** The bytes, when in memory. */
  body: Uint8Array<ArrayBuffer> | undefined;
  /** The file streamed when `body` is absent (the original, or a `.br`/`.gz` beside it). */
  file: { realPath: string; id: FileId } | undefined;
  /** Compress the file's bytes while streaming them (a large file, no `.br`/`.gz`). */
  streamed: boolean;
  /** Headers of a 200. */
  headers: [string, string][];
  /**
   * The 200 of `body`, cloned per request: building a Response validates
   * each header again (about a quarter of the CPU of a small file), a clone
   * copies them as they are. It holds a copy of `body` (see {@linkcode heldBytes}).
   */
  response: Response | undefined;
  /** Headers of a 304. */
  notModified: [string, string][];
  /** The 304, made on first use and cloned per request like `response`. */
  notModifiedResponse: Response | undefined;
}

/** A resolved file: what a request for the same path needs, without touching the disk. */
export interface FileEntry {
  readonly worker: string;
  memory: number;
  /** The path as requested, through every symlink: `stat` of it revalidates the entry. */
  statPath: string;
  id: FileId;
  /** `.br`/`.gz` files beside the original, revalidated with it. */
  siblings: { statPath: string; id: FileId }[];
  /** `.br`/`.gz` paths that did not exist: one appearing re-resolves the entry too. */
  absentSiblings: string[];
  checkedAt: number;
  compressible: boolean;
  contentType: string;
  lastModified: string;
  mtimeSeconds: number;
  identity: Variant;
  /** Encodings on offer. */
  offered: Encoding[];
  /** Encodings of the `.br`/`.gz` files beside the original, preferred over compressing. */
  precompressed: Encoding[];
  variants: Partial<Record<Encoding, Variant>>;
  /** Encodings still to compress once from `identity.body` (the first request does it). */
  pending: Partial<Record<Encoding, Promise<Variant | null>>>;
  /** ETags of this version in every encoding: `If-Match` accepts any. */
  matchTags: string[];
}

/** A request path that is not a file: 404, or a 301 to add the directory's slash. */
export type Resolution =
  | { kind: "file"; entry: FileEntry }
  | { kind: "not-found"; reason: string }
  | { kind: "redirect" };

/** How an entry is built. */
export interface ResolveSettings {
  /** Bytes of files up to this size are read into the entry. */
  fileMaxBytes: number;
  cacheControl: string;
  compressible: (contentType: string) => boolean;
  /** Compress once, or while streaming, when no `.br`/`.gz` exists. */
  compress: boolean;
  /** Files below this size are not compressed (a `.br`/`.gz` beside them still is served). */
  minBytes: number;
  now: number;
}

const INDEX_FILE = "index.html";
const SIBLINGS: [Encoding, string][] = [["br", ".br"], ["gzip", ".gz"]];
const ENCODINGS: readonly Encoding[] = ["br", "gzip"];
/** Memory accounted to an entry besides its bodies: paths, headers, the object. */
export const ENTRY_OVERHEAD = 1024;

/** True for the errors a request can cause by naming a path: a 404, never a 500. */
export function isClientPathError(err: unknown): boolean {
  if (
    err instanceof Deno.errors.NotFound ||
    err instanceof Deno.errors.NotADirectory ||
    err instanceof Deno.errors.PermissionDenied ||
    err instanceof Deno.errors.FilesystemLoop ||
    err instanceof Deno.errors.IsADirectory
  ) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENAMETOOLONG" || code === "ELOOP" || code === "EACCES" ||
    code === "ENOENT" || code === "ENOTDIR" || code === "EPERM";
}

/** Runs `fn`, answering `null` for the errors {@linkcode isClientPathError} names. */
async function orNull<T>(fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (isClientPathError(err)) return null;
    throw err;
  }
}

function idOf(info: Deno.FileInfo): FileId {
  return {
    dev: info.dev,
    ino: info.ino ?? 0,
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
  };
}

/** True when both describe the same version of the same file. */
export function sameId(a: FileId, b: FileId): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size &&
    a.mtimeMs === b.mtimeMs;
}

/** The real path of `path` when it is `root` or inside it, else null (escapes, or missing). */
async function realInside(root: string, path: string): Promise<string | null> {
  const real = await orNull(() => Deno.realPath(path));
  if (real === null) return null;
  return real === root || real.startsWith(root + sep) ? real : null;
}

/**
 * Opens a regular file inside `root` and returns its identity and, when it is
 * small enough, its bytes. The handle's `fstat` must match the `stat` taken
 * when the path was checked: a file swapped in between (for a symlink out of
 * `public/`, say) is not read.
 */
async function readChecked(
  realPath: string,
  expected: FileId,
  fileMaxBytes: number,
): Promise<{ id: FileId; body: Uint8Array<ArrayBuffer> | undefined } | null> {
  if (expected.size > fileMaxBytes) return { id: expected, body: undefined };
  const file = await orNull(() => Deno.open(realPath, { read: true }));
  if (file === null) return null;
  try {
    const info = await file.stat();
    const id = idOf(info);
    if (!info.isFile || !sameId(id, expected)) return null;
    const body = new Uint8Array(id.size);
    let filled = 0;
    while (filled < body.length) {
      const n = await file.read(body.subarray(filled));
      if (n === null) return null; // truncated while reading: not this version
      filled += n;
    }
    return { id, body };
  } finally {
    file.close();
  }
}

function etagOf(id: FileId, encoding: Encoding | null): string {
  const base = `${Math.trunc(id.mtimeMs).toString(16)}-${id.size.toString(16)}`;
  return `"${base}${encoding ? ETAG_SUFFIX[encoding] : ""}"`;
}

/** Builds the headers of one encoding of an entry. */
export function makeVariant(
  entry: Pick<FileEntry, "contentType" | "lastModified" | "compressible">,
  cacheControl: string,
  encoding: Encoding | null,
  etag: string,
  size: number,
  body: Uint8Array<ArrayBuffer> | undefined,
  file: Variant["file"],
  streamed = false,
): Variant {
  const common: [string, string][] = [
    ["etag", etag],
    ["last-modified", entry.lastModified],
    ["cache-control", cacheControl],
  ];
  if (entry.compressible) common.push(["vary", "Accept-Encoding"]);
  const headers: [string, string][] = [
    ["content-type", entry.contentType],
    ...common,
    ["accept-ranges", "bytes"],
    ["x-content-type-options", "nosniff"],
  ];
  if (size >= 0) headers.push(["content-length", String(size)]);
  if (encoding) headers.push(["content-encoding", encoding]);
  return {
    encoding,
    etag,
    size,
    body,
    file,
    streamed,
    headers,
    response: body === undefined ? undefined : new Response(body, { headers }),
    notModified: common,
    notModifiedResponse: undefined,
  };
}

/**
 * Memory a variant's bytes take: the bytes, and the copy its `response`
 * holds (a Response copies the bytes it is given, as Fetch requires).
 */
export function heldBytes(variant: Variant): number {
  return variant.body === undefined ? 0 : 2 * variant.body.length;
}

/** A variant's ETag for a file of this version: `"mtime-size"`, `-br`/`-gz` appended per encoding. */
export function variantEtag(id: FileId, encoding: Encoding | null): string {
  return etagOf(id, encoding);
}

/**
 * Resolves `workers/{worker}/public/{segments}` (SPEC §8): every symlink is
 * resolved and the result must lie inside the worker's real `public/`; a
 * directory is its `index.html` (with a slash) or a redirect (without); FIFOs,
 * sockets and devices are never opened. Files up to `fileMaxBytes` are read
 * into the entry, with their `.br`/`.gz` siblings.
 */
export async function resolveFile(
  publicDir: string,
  worker: string,
  segments: readonly string[],
  trailingSlash: boolean,
  settings: ResolveSettings,
): Promise<Resolution> {
  const root = await orNull(() => Deno.realPath(publicDir));
  if (root === null) return { kind: "not-found", reason: "no public dir" };
  const rootInfo = await orNull(() => Deno.stat(root));
  if (!rootInfo?.isDirectory) {
    return { kind: "not-found", reason: "public is not a directory" };
  }
  let statPath = join(publicDir, ...segments);
  let real = await realInside(root, statPath);
  if (real === null) return { kind: "not-found", reason: "missing or outside" };
  let info = await orNull(() => Deno.stat(real!));
  if (info === null) return { kind: "not-found", reason: "missing" };
  if (info.isDirectory) {
    const indexPath = join(statPath, INDEX_FILE);
    const index = await realInside(root, indexPath);
    const indexInfo = index === null
      ? null
      : await orNull(() => Deno.stat(index));
    if (!indexInfo?.isFile) return { kind: "not-found", reason: "directory" };
    if (!trailingSlash) return { kind: "redirect" };
    statPath = indexPath;
    real = index!;
    info = indexInfo;
  } else if (!info.isFile) {
    return { kind: "not-found", reason: "not a regular file" };
  } else if (trailingSlash) {
    return { kind: "not-found", reason: "file with a trailing slash" };
  }
  const read = await readChecked(real, idOf(info), settings.fileMaxBytes);
  if (read === null) return { kind: "not-found", reason: "changed while read" };
  const { id, body } = read;
  const contentType = contentTypeFor(statPath);
  const compressible = settings.compressible(contentType);
  const mtimeSeconds = Math.floor(id.mtimeMs / 1000);
  const lastModified = new Date(mtimeSeconds * 1000).toUTCString();
  const shape = { contentType, lastModified, compressible };
  const identity = makeVariant(
    shape,
    settings.cacheControl,
    null,
    etagOf(id, null),
    id.size,
    body,
    { realPath: real, id },
  );
  const entry: FileEntry = {
    worker,
    memory: ENTRY_OVERHEAD + heldBytes(identity),
    statPath,
    id,
    siblings: [],
    absentSiblings: [],
    checkedAt: settings.now,
    compressible,
    contentType,
    lastModified,
    mtimeSeconds,
    identity,
    offered: [],
    precompressed: [],
    variants: {},
    pending: {},
    matchTags: [identity.etag, ...ENCODINGS.map((e) => etagOf(id, e))],
  };
  if (!compressible) return { kind: "file", entry };
  for (const [encoding, ext] of SIBLINGS) {
    const siblingPath = statPath + ext;
    const siblingReal = await realInside(root, siblingPath);
    if (siblingReal === null) {
      if (await orNull(() => Deno.stat(siblingPath)) === null) {
        entry.absentSiblings.push(siblingPath);
      }
      continue;
    }
    const siblingInfo = await orNull(() => Deno.stat(siblingReal));
    if (!siblingInfo?.isFile) continue;
    const sibling = await readChecked(
      siblingReal,
      idOf(siblingInfo),
      settings.fileMaxBytes,
    );
    if (sibling === null) continue;
    entry.siblings.push({ statPath: siblingPath, id: sibling.id });
    entry.precompressed.push(encoding);
    const variant = makeVariant(
      shape,
      settings.cacheControl,
      encoding,
      etagOf(id, encoding),
      sibling.id.size,
      sibling.body,
      { realPath: siblingReal, id: sibling.id },
    );
    entry.variants[encoding] = variant;
    entry.memory += heldBytes(variant);
  }
  const compressOnTheFly = settings.compress && id.size >= settings.minBytes;
  entry.offered = ENCODINGS.filter((e) =>
    entry.variants[e] !== undefined || compressOnTheFly
  );
  if (compressOnTheFly && body === undefined) {
    // Too large to keep: compressed while streaming, per request.
    for (const e of ENCODINGS) {
      entry.variants[e] ??= makeVariant(
        shape,
        settings.cacheControl,
        e,
        etagOf(id, e),
        -1,
        undefined,
        { realPath: real, id },
        true,
      );
    }
  }
  return { kind: "file", entry };
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (err) {
    if (isClientPathError(err)) return null;
    throw err;
  }
}

/**
 * Re-stats an entry's file and siblings: true when all are the version the
 * entry holds and no `.br`/`.gz` appeared beside it. Synchronous, like the open below: a `stat` of a cached inode
 * takes microseconds, less than handing it to the blocking-op thread pool and
 * back (nginx blocks on these too).
 */
export function stillValid(entry: FileEntry): boolean {
  if (!sameInfo(statOrNull(entry.statPath), entry.id)) return false;
  for (const sibling of entry.siblings) {
    if (!sameInfo(statOrNull(sibling.statPath), sibling.id)) return false;
  }
  for (const path of entry.absentSiblings) {
    if (statOrNull(path) !== null) return false;
  }
  return true;
}

function sameInfo(info: Deno.FileInfo | null, id: FileId): boolean {
  return info !== null && info.isFile && sameId(idOf(info), id);
}

/** Opens a variant's file for streaming; null when it is no longer the version the entry holds. */
export function openChecked(
  file: NonNullable<Variant["file"]>,
): Deno.FsFile | null {
  // Looked at before it is opened: a FIFO put in its place would block
  // openSync, and with it the whole server, until a writer came.
  if (!sameInfo(statOrNull(file.realPath), file.id)) return null;
  let handle: Deno.FsFile;
  try {
    handle = Deno.openSync(file.realPath, { read: true });
  } catch (err) {
    if (isClientPathError(err)) return null;
    throw err;
  }
  try {
    if (sameInfo(handle.statSync(), file.id)) return handle;
  } catch (err) {
    handle.close();
    throw err;
  }
  handle.close();
  return null;
}
