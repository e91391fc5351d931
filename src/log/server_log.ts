import {
  createLogger,
  formatFields,
  levelAtLeast,
  type LineMeta,
  type Logger,
  type LogLevel,
  type LogRecord,
} from "./logger.ts";
import { FileSink } from "./file_sink.ts";

const encoder = new TextEncoder();
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

/** A line without ANSI escape sequences (colours, cursor moves). */
export function stripAnsi(line: string): string {
  return line.includes("\x1b") ? line.replace(ANSI, "") : line;
}

/** Options for {@linkcode createServerLog}. */
export interface ServerLogOptions {
  /** Nothing on stdout; warnings and errors still go to stderr. Default false. */
  quiet?: boolean;
  /** Lowest level written anywhere. Default `"info"`. */
  level?: LogLevel;
  /** Absolute path template of the server log (`{date}`); "" = none. Default "". */
  logFile?: string;
  /**
   * The absolute path template (`{date}`, `{name}` already expanded or not)
   * for a worker's output; "" sends it to the server log. Default: always "".
   */
  workerLogFile?: (worker: string) => string;
  /** The clock for timestamps and `{date}`. Default `() => new Date()`. */
  now?: () => Date;
  /** Sees every structured record (see {@linkcode LoggerOptions.onRecord}). */
  onRecord?: (record: LogRecord) => void;
  /** Keep ANSI colours (a worker's coloured output) on stdout/stderr. Default: when stdout is a terminal. */
  colors?: boolean;
  /** Writes a line to stdout. Default: `Deno.stdout`. */
  stdout?: (line: string) => void;
  /** Writes a line to stderr. Default: `Deno.stderr`. */
  stderr?: (line: string) => void;
}

/** The server's logger and the files behind it. */
export interface ServerLog {
  logger: Logger;
  /** Reopens every log file (SIGUSR1, after logrotate moved them). */
  reopen(): void;
  /** Closes every log file. */
  close(): void;
}

function stdWriter(stream: { writeSync(p: Uint8Array): number }) {
  return (line: string) => {
    const bytes = encoder.encode(line + "\n");
    let written = 0;
    while (written < bytes.length) {
      written += stream.writeSync(bytes.subarray(written));
    }
  };
}

/**
 * The one logger of a running server: readable lines on stdout (unless
 * quiet), the same lines in `server.log_file`, and each worker's output in
 * its own `log_file` when one is set.
 *
 * @example
 * ```ts
 * const { logger, reopen } = createServerLog({ logFile: "/srv/logs/server_{date}.log" });
 * Deno.addSignalListener("SIGUSR1", reopen);
 * logger.info("tqserver ready", { port: 8080 });
 * ```
 */
export function createServerLog(options: ServerLogOptions = {}): ServerLog {
  const {
    quiet = false,
    level = "info",
    logFile = "",
    workerLogFile = () => "",
    now = () => new Date(),
    onRecord,
    stdout = stdWriter(Deno.stdout),
    stderr = stdWriter(Deno.stderr),
    colors = Deno.stdout.isTerminal(),
  } = options;
  const main = logFile ? new FileSink(logFile, { now }) : undefined;
  const workerSinks = new Map<string, FileSink>();
  const toFile = (sink: FileSink, line: string) => {
    try {
      // Files never get colour codes; a terminal keeps them.
      sink.write(stripAnsi(line));
    } catch (err) {
      // Said once per path (the sink drops later lines for it); the console still has them.
      stderr(
        `${now().toISOString()} ERROR log file unavailable${
          formatFields({
            path: sink.template,
            error: err,
            cause: (err as Error).cause,
          })
        }`,
      );
    }
  };
  const write = (line: string, meta: LineMeta) => {
    const shown = colors ? line : stripAnsi(line);
    if (!quiet) stdout(shown);
    else if (levelAtLeast(meta.level, "warn")) stderr(shown);
    if (meta.source) {
      const template = workerLogFile(meta.source).replaceAll(
        "{name}",
        meta.source,
      );
      if (template) {
        let sink = workerSinks.get(template);
        if (!sink) {
          sink = new FileSink(template, { now });
          workerSinks.set(template, sink);
        }
        toFile(sink, line);
        return;
      }
    }
    if (main) toFile(main, line);
  };
  const logger = createLogger({
    level,
    now,
    write,
    ...(onRecord ? { onRecord } : {}),
  });
  return {
    logger,
    reopen: () => {
      main?.reopen();
      for (const sink of workerSinks.values()) sink.reopen();
    },
    close: () => {
      main?.close();
      for (const sink of workerSinks.values()) sink.close();
    },
  };
}
