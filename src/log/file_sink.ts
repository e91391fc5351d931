import { dirname } from "node:path";

const encoder = new TextEncoder();

/** Options for {@linkcode FileSink}. */
export interface FileSinkOptions {
  /** The clock that picks the `{date}`. Default `() => new Date()`. */
  now?: () => Date;
}

/** The `YYYY-MM-DD` (UTC, like the log lines' timestamps) that `{date}` stands for. */
export function logDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/**
 * Appends lines to a file named by a template, with `{date}` replaced by the
 * current day: the first line after midnight (UTC) opens the next day's file.
 * {@linkcode FileSink.reopen} closes the file so the next line opens the path
 * again — after logrotate moved it away (SIGUSR1).
 *
 * @example
 * ```ts
 * const sink = new FileSink("/srv/app/logs/server_{date}.log");
 * sink.write("hello");
 * sink.reopen();
 * ```
 */
export class FileSink {
  /** The path template, `{date}` not yet expanded. */
  readonly template: string;
  #now: () => Date;
  #path = "";
  #file: Deno.FsFile | undefined;
  #failed = "";

  constructor(template: string, options: FileSinkOptions = {}) {
    const { now = () => new Date() } = options;
    this.template = template;
    this.#now = now;
  }

  /** The path currently written to ("" before the first line). */
  get path(): string {
    return this.#path;
  }

  /**
   * Appends one line (a newline is added).
   *
   * @throws {Deno.errors.PermissionDenied} Or another I/O error, the first
   * time a path cannot be opened; later lines for that path are dropped.
   */
  write(line: string): void {
    const path = this.template.replaceAll("{date}", logDate(this.#now()));
    if (path !== this.#path || !this.#file) {
      if (path === this.#failed) return;
      this.close();
      try {
        Deno.mkdirSync(dirname(path), { recursive: true });
        this.#file = Deno.openSync(path, { append: true, create: true });
        this.#failed = "";
      } catch (err) {
        this.#failed = path;
        throw new Error(`Cannot open log file "${path}"`, { cause: err });
      }
      this.#path = path;
    }
    const bytes = encoder.encode(line + "\n");
    let written = 0;
    while (written < bytes.length) {
      written += this.#file.writeSync(bytes.subarray(written));
    }
  }

  /** Closes the file; the next line opens the path anew. */
  reopen(): void {
    this.close();
    this.#failed = "";
  }

  /** Closes the file. */
  close(): void {
    try {
      this.#file?.close();
    } catch {
      // Already closed.
    }
    this.#file = undefined;
  }
}
