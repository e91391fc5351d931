import { mimes } from "hono/utils/mime";

/** Extensions hono's table lacks (its own entries are used as they are). */
const EXTRA: Readonly<Record<string, string>> = {
  cjs: "text/javascript; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  yaml: "application/yaml; charset=utf-8",
  yml: "application/yaml; charset=utf-8",
  toml: "application/toml; charset=utf-8",
  ogg: "audio/ogg",
  wav: "audio/wav",
  flac: "audio/flac",
  apng: "image/apng",
  jxl: "image/jxl",
  heic: "image/heic",
  br: "application/x-br",
  zst: "application/zstd",
  tar: "application/x-tar",
  "7z": "application/x-7z-compressed",
  mov: "video/quicktime",
};

/** The one Content-Type table (static files and the admin dashboard), keyed by lower-case extension. */
const TYPES: Readonly<Record<string, string>> = { ...EXTRA, ...mimes };

/** The fallback for an unknown or missing extension. */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

/**
 * Returns the Content-Type for a file name by its extension: hono's table
 * (`hono/utils/mime`) plus the few extensions it lacks; text types carry
 * `; charset=utf-8`. `app.css.gz` is `application/gzip`: the bytes are sent as
 * they are, never labelled with a Content-Encoding they were not negotiated for.
 *
 * @example
 * ```ts
 * contentTypeFor("app.css"); // "text/css; charset=utf-8"
 * ```
 */
export function contentTypeFor(fileName: string): string {
  const dot = fileName.lastIndexOf(".");
  if (dot < 0 || dot < fileName.lastIndexOf("/")) return DEFAULT_CONTENT_TYPE;
  return TYPES[fileName.slice(dot + 1).toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}
