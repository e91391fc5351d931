/**
 * Compression: `Accept-Encoding` negotiation, br and gzip with `node:zlib`,
 * once for cached bytes and streamed for workers' answers.
 *
 * @module
 */
export * from "./compress.ts";
export {
  createTypeMatcher,
  type Encoding,
  ETAG_SUFFIX,
  negotiateEncoding,
} from "./_negotiate.ts";
