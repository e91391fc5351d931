import type { Logger } from "../log/mod.ts";

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Output lines an instance keeps for error messages. */
const KEPT_LINES = 20;

async function pipeLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
) {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const text = rest + chunk;
    const lines = text.split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) onLine(line.replace(/\r$/, ""));
  }
  if (rest) onLine(rest);
}

/** Options for {@linkcode OutputTail}. */
export interface OutputTailOptions {
  /** Worker name: the log prefix of each line. */
  name: string;
  /** Where every line goes. */
  logger: Logger;
}

/**
 * A process's stdout and stderr, line by line, to the logger; the last lines
 * are kept (without colour codes) for error messages.
 */
export class OutputTail {
  /** Settles once both pipes are closed. */
  readonly settled: Promise<unknown>;
  #lines: string[] = [];

  constructor(child: Deno.ChildProcess, options: OutputTailOptions) {
    const { name, logger } = options;
    const onLine = (line: string) => {
      // Kept for error messages (last_error, the overlay, log fields): no colour codes.
      this.#lines.push(line.replace(ANSI, ""));
      if (this.#lines.length > KEPT_LINES) this.#lines.shift();
      logger.line(name, line);
    };
    this.settled = Promise.all([
      pipeLines(child.stdout, onLine),
      pipeLines(child.stderr, onLine),
    ]).catch((err) =>
      logger.debug("worker output closed", { worker: name, error: err })
    );
  }

  /** The kept lines, oldest first. */
  lines(): string[] {
    return [...this.#lines];
  }
}
