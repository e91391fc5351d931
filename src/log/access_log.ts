import { FileSink } from "./file_sink.ts";

/** One answered request, as the access log records it. */
export interface AccessEntry {
  time: Date;
  requestId: string;
  client: string;
  method: string;
  /** Path with query, as the client sent it. */
  path: string;
  /** Worker that answered, `static`, or `-`. */
  worker: string;
  status: number;
  /** Body bytes: Content-Length, or counted as sent for a streamed body (0 for HEAD). */
  bytes: number;
  /** Milliseconds until the response headers. */
  ms: number;
  referer: string;
  userAgent: string;
}

/** Access log line formats. */
export type AccessLogFormat = "combined" | "json";

/** Options for {@linkcode AccessLog}. */
export interface AccessLogOptions {
  /** `combined` (nginx/Apache plus request id, worker and ms) or `json`. Default combined. */
  format?: AccessLogFormat;
  /** The clock that picks the `{date}` of the file. Default `() => new Date()`. */
  now?: () => Date;
  /** Where a write error is reported (once per path). Default: stderr. */
  onError?: (err: unknown) => void;
}

const MONTHS = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
];

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** `10/Oct/2000:13:55:36 +0000`, the common log format's time (UTC). */
export function clfTime(d: Date): string {
  return `${pad(d.getUTCDate())}/${
    MONTHS[d.getUTCMonth()]
  }/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${
    pad(d.getUTCSeconds())
  } +0000`;
}

function quote(value: string): string {
  // Like nginx: a quote, backslash or control character must not forge a field.
  return value.replace(
    // deno-lint-ignore no-control-regex
    /["\\\x00-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** Formats one entry as a line of `format`. */
export function formatAccess(
  entry: AccessEntry,
  format: AccessLogFormat,
): string {
  if (format === "json") {
    return JSON.stringify({
      time: entry.time.toISOString(),
      request_id: entry.requestId,
      client: entry.client,
      method: entry.method,
      path: entry.path,
      worker: entry.worker,
      status: entry.status,
      bytes: entry.bytes,
      duration_ms: entry.ms,
      referer: entry.referer,
      user_agent: entry.userAgent,
    });
  }
  return `${entry.client} - - [${clfTime(entry.time)}] "${
    quote(`${entry.method} ${entry.path} HTTP/1.1`)
  }" ${entry.status} ${entry.bytes || "-"} "${quote(entry.referer || "-")}" "${
    quote(entry.userAgent || "-")
  }" rid=${
    quote(entry.requestId || "-")
  } worker=${entry.worker} ms=${entry.ms}`;
}

/**
 * The access log (`server.access_log`): one line per answered request, in a
 * file whose `{date}` follows the day.
 *
 * @example
 * ```ts
 * const access = new AccessLog("/srv/app/logs/access_{date}.log", { format: "json" });
 * access.write(entry);
 * ```
 */
export class AccessLog {
  readonly format: AccessLogFormat;
  #sink: FileSink;
  #onError: (err: unknown) => void;
  #closed = false;

  constructor(pathTemplate: string, options: AccessLogOptions = {}) {
    const {
      format = "combined",
      now,
      onError = (err) =>
        console.error(`tqserver: access log unavailable: ${err}`),
    } = options;
    this.format = format;
    this.#sink = new FileSink(pathTemplate, now ? { now } : {});
    this.#onError = onError;
  }

  /** Appends one entry; none after {@linkcode close}. Never throws: a write error is reported once. */
  write(entry: AccessEntry): void {
    // A stream that ends after the server stopped would reopen the file.
    if (this.#closed) return;
    try {
      this.#sink.write(formatAccess(entry, this.format));
    } catch (err) {
      this.#onError(err);
    }
  }

  /** Reopens the file (SIGUSR1). */
  reopen(): void {
    this.#sink.reopen();
  }

  /** Closes the file for good. */
  close(): void {
    this.#closed = true;
    this.#sink.close();
  }
}
