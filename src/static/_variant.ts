// Folder-private: one encoding of a static file, with its headers and the
// answers cloned per request.
import { type Encoding, ETAG_SUFFIX } from "../compress/mod.ts";
import type { FileId } from "./_file_id.ts";

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

function etagOf(id: FileId, encoding: Encoding | null): string {
  const base = `${Math.trunc(id.mtimeMs).toString(16)}-${id.size.toString(16)}`;
  return `"${base}${encoding ? ETAG_SUFFIX[encoding] : ""}"`;
}

/** What the headers of every variant of a file share. */
export interface VariantShape {
  /** `Content-Type`. */
  contentType: string;
  /** `Last-Modified`. */
  lastModified: string;
  /** Compressible: the answers carry `Vary: Accept-Encoding`. */
  compressible: boolean;
}

/** Options for {@linkcode makeVariant}. */
export interface VariantOptions {
  /** `Cache-Control` of the answers. */
  cacheControl: string;
  /** The encoding, or null for the identity bytes. */
  encoding: Encoding | null;
  /** The ETag (see {@linkcode variantEtag}). */
  etag: string;
  /** Body length; -1 when compressed while streaming (unknown). */
  size: number;
  /** The bytes, when held in memory. Default: none. */
  body?: Uint8Array<ArrayBuffer> | undefined;
  /** The file streamed when `body` is absent. Default: none. */
  file?: Variant["file"];
  /** Compress the file's bytes while streaming them. Default false. */
  streamed?: boolean;
}

/** Builds the headers of one encoding of an entry. */
export function makeVariant(
  entry: VariantShape,
  options: VariantOptions,
): Variant {
  const {
    cacheControl,
    encoding,
    etag,
    size,
    body,
    file,
    streamed = false,
  } = options;
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
