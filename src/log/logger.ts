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

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. Default `"info"`. */
  level?: LogLevel;
  /** Where formatted lines go. Default: stderr. */
  write?: (line: string) => void;
  /** The clock used for timestamps. Default `() => new Date()`. */
  now?: () => Date;
}

const LEVELS: Record<LogLevel, number> = {
  debug: 0,
  info: 1,
  warn: 2,
  error: 3,
};
const encoder = new TextEncoder();

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
  const { level = "info", write = writeStderr, now = () => new Date() } =
    options;
  const min = LEVELS[level];
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (LEVELS[lvl] < min) return;
    write(
      `${now().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${msg}${
        formatFields(fields)
      }`,
    );
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    line: (prefix, text) => {
      if (min > LEVELS.info) return;
      write(`${now().toISOString()} [${prefix}] ${text}`);
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
