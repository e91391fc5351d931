// Folder-private: resolving a static path to a cache entry, safely.
import { join } from "node:path";
import type { Encoding } from "../compress/mod.ts";
import { contentTypeFor } from "./mime.ts";
import {
  type FileId,
  idOf,
  orNull,
  readChecked,
  realInside,
  sameInfo,
  statOrNull,
} from "./_file_id.ts";
import {
  heldBytes,
  makeVariant,
  type Variant,
  variantEtag,
} from "./_variant.ts";

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

/** Options for {@linkcode resolveFile}: which file, and how its entry is built. */
export interface ResolveOptions {
  /** The worker whose `public/` is served. */
  worker: string;
  /** The path segments below `public/`, decoded. */
  segments: readonly string[];
  /** The request path ended with a slash: a directory answers its `index.html`, a file 404. */
  trailingSlash: boolean;
  /** Bytes of files up to this size are read into the entry. */
  fileMaxBytes: number;
  /** `Cache-Control` of the answers. */
  cacheControl: string;
  /** True for the content types worth compressing. */
  compressible: (contentType: string) => boolean;
  /** Compress once, or while streaming, when no `.br`/`.gz` exists. */
  compress: boolean;
  /** Files below this size are not compressed (a `.br`/`.gz` beside them still is served). */
  minBytes: number;
  /** Now (ms since the epoch): when the entry was last checked. */
  now: number;
}

const INDEX_FILE = "index.html";
const SIBLINGS: [Encoding, string][] = [["br", ".br"], ["gzip", ".gz"]];
const ENCODINGS: readonly Encoding[] = ["br", "gzip"];
/** Memory accounted to an entry besides its bodies: paths, headers, the object. */
export const ENTRY_OVERHEAD = 1024;

/**
 * Resolves `workers/{worker}/public/{segments}` (SPEC §8): every symlink is
 * resolved and the result must lie inside the worker's real `public/`; a
 * directory is its `index.html` (with a slash) or a redirect (without); FIFOs,
 * sockets and devices are never opened. Files up to `fileMaxBytes` are read
 * into the entry, with their `.br`/`.gz` siblings.
 */
export async function resolveFile(
  publicDir: string,
  options: ResolveOptions,
): Promise<Resolution> {
  const { worker, segments, trailingSlash, ...settings } = options;
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
  const read = await readChecked(real, {
    expected: idOf(info),
    fileMaxBytes: settings.fileMaxBytes,
  });
  if (read === null) return { kind: "not-found", reason: "changed while read" };
  const { id, body } = read;
  const contentType = contentTypeFor(statPath);
  const compressible = settings.compressible(contentType);
  const mtimeSeconds = Math.floor(id.mtimeMs / 1000);
  const lastModified = new Date(mtimeSeconds * 1000).toUTCString();
  const shape = { contentType, lastModified, compressible };
  const identity = makeVariant(shape, {
    cacheControl: settings.cacheControl,
    encoding: null,
    etag: variantEtag(id, null),
    size: id.size,
    body,
    file: { realPath: real, id },
  });
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
    matchTags: [identity.etag, ...ENCODINGS.map((e) => variantEtag(id, e))],
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
    const sibling = await readChecked(siblingReal, {
      expected: idOf(siblingInfo),
      fileMaxBytes: settings.fileMaxBytes,
    });
    if (sibling === null) continue;
    entry.siblings.push({ statPath: siblingPath, id: sibling.id });
    entry.precompressed.push(encoding);
    const variant = makeVariant(shape, {
      cacheControl: settings.cacheControl,
      encoding,
      etag: variantEtag(id, encoding),
      size: sibling.id.size,
      body: sibling.body,
      file: { realPath: siblingReal, id: sibling.id },
    });
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
      entry.variants[e] ??= makeVariant(shape, {
        cacheControl: settings.cacheControl,
        encoding: e,
        etag: variantEtag(id, e),
        size: -1,
        file: { realPath: real, id },
        streamed: true,
      });
    }
  }
  return { kind: "file", entry };
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
