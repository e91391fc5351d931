// Folder-private: building the answers of the static handler.
import { compressStream, emptyStream } from "../compress/mod.ts";
import type { StaticCacheStats } from "./cache.ts";
import { evaluatePreconditions, ifRangeHolds } from "./_conditional.ts";
import type { FileEntry } from "./_entry.ts";
import { openChecked } from "./_file_id.ts";
import type { Variant } from "./_variant.ts";
import { parseRange } from "./_range.ts";
import { rangeStream } from "./_stream.ts";
import { READ_WHOLE_MAX_BYTES, type ScratchBuffer } from "./_buffers.ts";

const encoder = new TextEncoder();

/** Options for {@linkcode textResponse}. */
export interface TextResponseOptions {
  /** Headers added to (or replacing) the plain-text ones. Default: none. */
  headers?: Record<string, string>;
  /** Answer a HEAD: the GET's headers, no body. Default false. */
  head?: boolean;
}

/** A short text answer with an explicit length: a HEAD carries the GET's headers (RFC 9110 §9.3.2). */
export function textResponse(
  status: number,
  text: string,
  options: TextResponseOptions = {},
): Response {
  const { headers = {}, head = false } = options;
  const body = encoder.encode(text + "\n");
  // An explicit length: a HEAD answer carries the GET's headers (RFC 9110 §9.3.2).
  return new Response(head ? null : body, {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "content-length": String(body.length),
      "x-content-type-options": "nosniff",
      ...headers,
    },
  });
}

/** Options for {@linkcode respond}. */
export interface RespondOptions {
  /** The resolved file. */
  entry: FileEntry;
  /** The representation chosen for the request. */
  variant: Variant;
  /** The request's `Range` header, or null. */
  rangeHeader: string | null;
  /** Answer a HEAD: headers only. */
  head: boolean;
  /** Where the bytes served are counted. */
  counters: StaticCacheStats;
  /** The buffer mid-sized files are read into. */
  scratch: ScratchBuffer;
}

/**
 * Answers a GET or HEAD from an entry and its chosen variant: 412 or 304 by
 * the preconditions, 206/416 for a byte range of the identity bytes, else
 * 200 from memory or from the file (read whole into `scratch` up to
 * {@linkcode READ_WHOLE_MAX_BYTES}, streamed when larger). "stale" when the
 * file on disk is no longer the version the entry holds (the caller
 * resolves it again).
 */
export function respond(
  req: Request,
  options: RespondOptions,
): Response | "stale" {
  const { entry, variant, rangeHeader, head, counters, scratch } = options;
  const pre = evaluatePreconditions(req.headers, {
    etag: variant.etag,
    matchTags: entry.matchTags,
    mtimeSeconds: entry.mtimeSeconds,
  });
  if (pre === "failed") {
    return textResponse(412, "Precondition failed", { head });
  }
  if (pre === "not-modified") {
    variant.notModifiedResponse ??= new Response(null, {
      status: 304,
      headers: variant.notModified,
    });
    return variant.notModifiedResponse.clone();
  }
  if (variant.encoding === null && rangeHeader !== null) {
    const size = entry.id.size;
    let range = parseRange(rangeHeader, size);
    if (
      !ifRangeHolds(req.headers.get("if-range"), {
        etag: variant.etag,
        lastModified: entry.lastModified,
      })
    ) {
      range = { kind: "none" };
    }
    if (range.kind === "unsatisfiable") {
      return textResponse(416, "Range not satisfiable", {
        headers: {
          "content-range": `bytes */${size}`,
          "accept-ranges": "bytes",
        },
        head,
      });
    }
    if (range.kind === "range") {
      const length = range.end - range.start + 1;
      const headers = new Headers(variant.headers);
      headers.set(
        "content-range",
        `bytes ${range.start}-${range.end}/${size}`,
      );
      headers.set("content-length", String(length));
      if (head) return new Response(null, { status: 206, headers });
      let body: BodyInit;
      if (variant.body !== undefined) {
        body = variant.body.subarray(range.start, range.end + 1);
      } else {
        const file = openChecked(variant.file!);
        if (file === null) return "stale";
        if (range.end === size - 1) {
          // To the end: the file's own stream, pumped without JS per chunk.
          file.seekSync(range.start, Deno.SeekMode.Start);
          body = file.readable;
        } else body = rangeStream(file, { start: range.start, length });
      }
      counters.servedBytes += length;
      return new Response(body, { status: 206, headers });
    }
  }
  if (head) {
    // Unknown length (compressed while streaming): an empty stream, so the
    // HEAD answer carries no `Content-Length: 0` the GET would not.
    const body = variant.size < 0 ? emptyStream() : null;
    return new Response(body, { headers: variant.headers });
  }
  if (variant.response !== undefined) {
    counters.servedBytes += variant.size;
    return variant.response.clone();
  }
  const file = openChecked(variant.file!);
  if (file === null) return "stale";
  if (variant.streamed) {
    return new Response(
      compressStream(file.readable, variant.encoding!),
      { headers: variant.headers },
    );
  }
  if (variant.size <= READ_WHOLE_MAX_BYTES) {
    const bytes = scratch.readWhole(file, variant.size);
    if (bytes === null) return "stale";
    counters.servedBytes += variant.size;
    // The Response takes a copy: the scratch buffer is free again at once.
    return new Response(bytes, { headers: variant.headers });
  }
  counters.servedBytes += variant.size;
  // file.readable is backed by the file: Deno pumps it without JS per chunk,
  // and closes the file at its end and on cancel.
  return new Response(file.readable, { headers: variant.headers });
}
