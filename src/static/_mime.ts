const UTF8 = "; charset=utf-8";

/** Built-in Content-Type table, keyed by lower-case extension without the dot. */
const TYPES: Readonly<Record<string, string>> = {
  html: "text/html" + UTF8,
  htm: "text/html" + UTF8,
  css: "text/css" + UTF8,
  js: "text/javascript" + UTF8,
  mjs: "text/javascript" + UTF8,
  json: "application/json" + UTF8,
  map: "application/json" + UTF8,
  webmanifest: "application/manifest+json" + UTF8,
  svg: "image/svg+xml" + UTF8,
  txt: "text/plain" + UTF8,
  md: "text/markdown" + UTF8,
  csv: "text/csv" + UTF8,
  xml: "application/xml" + UTF8,
  yaml: "application/yaml" + UTF8,
  yml: "application/yaml" + UTF8,
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  ico: "image/x-icon",
  pdf: "application/pdf",
  wasm: "application/wasm",
  woff: "font/woff",
  woff2: "font/woff2",
  ttf: "font/ttf",
  otf: "font/otf",
  mp4: "video/mp4",
  webm: "video/webm",
  mp3: "audio/mpeg",
  wav: "audio/wav",
  ogg: "audio/ogg",
  zip: "application/zip",
  gz: "application/gzip",
};

/** The fallback for an unknown or missing extension. */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

/**
 * Returns the Content-Type for a file name by its extension; text types carry
 * `; charset=utf-8`. `app.css.gz` is `application/gzip`: the bytes are sent as
 * they are, never labelled with a Content-Encoding they were not negotiated for.
 */
export function contentTypeFor(fileName: string): string {
  const dot = fileName.lastIndexOf(".");
  if (dot < 0) return DEFAULT_CONTENT_TYPE;
  return TYPES[fileName.slice(dot + 1).toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}
