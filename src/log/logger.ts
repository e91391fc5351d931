/** Log severity, in increasing order. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Structured fields appended to a log line as `key=value`. */
export type LogFields = Record<string, unknown>;

/** The one logger every module writes through: fixed messages plus fields. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Writes a raw line (a worker's output), prefixed but unformatted. */
  line(prefix: string, text: string): void;
}

/** One structured record, as handed to {@linkcode LoggerOptions.onRecord}. */
export interface LogRecord {
  time: Date;
  level: LogLevel;
  msg: string;
  fields: LogFields;
}

/** What a sink learns about a formatted line besides its text. */
export interface LineMeta {
  level: LogLevel;
  /** Set for a worker's output line: the prefix passed to {@linkcode Logger.line}. */
  source?: string;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. Default `"info"`. */
  level?: LogLevel;
  /** Where formatted lines go. Default: stderr. */
  write?: (line: string, meta: LineMeta) => void;
  /** The clock used for timestamps. Default `() => new Date()`. */
  now?: () => Date;
  /**
   * Sees every structured record, whatever `level` is (the admin event log
   * and the metrics are built from these). Default: none.
   */
  onRecord?: (record: LogRecord) => void;
}

const LEVELS: Record<LogLevel, number> = {
  debug: 0,
  info: 1,
  warn: 2,
  error: 3,
};
const encoder = new TextEncoder();

/** True when `level` is at least `min`. */
export function levelAtLeast(level: LogLevel, min: LogLevel): boolean {
  return LEVELS[level] >= LEVELS[min];
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) return "undefined";
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

/** Formats fields as ` key=value` pairs, quoting values that need it. */
export function formatFields(fields: LogFields | undefined): string {
  if (!fields) return "";
  let out = "";
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out += ` ${key}=${formatValue(value)}`;
  }
  return out;
}

/**
 * A multi-line text field (a build error's code frame, a stack trace) keeps
 * its first line in place and follows the record as indented lines of its
 * own, instead of one line full of `\n` escapes.
 */
function splitMultiline(
  fields: LogFields | undefined,
): [LogFields | undefined, string] {
  if (!fields) return [fields, ""];
  let more = "";
  let inline: LogFields | undefined;
  for (const [key, value] of Object.entries(fields)) {
    const text = value instanceof Error ? value.message : value;
    if (typeof text !== "string" || !text.includes("\n")) continue;
    const [first, ...rest] = text.replace(/\s+$/, "").split("\n");
    inline ??= { ...fields };
    inline[key] = first;
    for (const line of rest) more += line.trim() ? `\n    ${line}` : "\n";
  }
  return [inline ?? fields, more];
}

function writeStderr(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/**
 * Creates a logger that writes `time level msg key=value ...` lines.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "debug" });
 * log.info("worker started", { worker: "index", pid: 123 });
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const {
    level = "info",
    write = writeStderr,
    now = () => new Date(),
    onRecord,
  } = options;
  const min = LEVELS[level];
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    const time = now();
    if (onRecord) {
      try {
        onRecord({ time, level: lvl, msg, fields: fields ?? {} });
      } catch (err) {
        // An observer must never break the code that logs.
        writeStderr(
          `${time.toISOString()} ERROR log observer failed${
            formatFields({ error: err })
          }`,
        );
      }
    }
    if (LEVELS[lvl] < min) return;
    const [inline, more] = splitMultiline(fields);
    write(
      `${time.toISOString()} ${lvl.toUpperCase().padEnd(5)} ${msg}${
        formatFields(inline)
      }${more}`,
      { level: lvl },
    );
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    line: (prefix, text) => {
      if (min > LEVELS.info) return;
      write(`${now().toISOString()} [${prefix}] ${text}`, {
        level: "info",
        source: prefix,
      });
    },
  };
}

/** A logger that drops everything; for tests and `--quiet` sub-components. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  line() {},
};

/**
 * Returns a logger that shows every record to `onRecord` (whatever the
 * level), then passes it on to `logger`.
 */
export function observeLogger(
  logger: Logger,
  onRecord: (record: LogRecord) => void,
): Logger {
  const wrap = (level: LogLevel) => (msg: string, fields?: LogFields) => {
    onRecord({ time: new Date(), level, msg, fields: fields ?? {} });
    logger[level](msg, fields);
  };
  return {
    debug: wrap("debug"),
    info: wrap("info"),
    warn: wrap("warn"),
    error: wrap("error"),
    line: (prefix, text) => logger.line(prefix, text),
  };
}
