/** Output lines quoted in a start failure. */
const QUOTED_LINES = 5;

/** What a failed health probe says, in a few words. */
export function probeProblem(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "TimeoutError") return "no answer in time";
  let text = err.message.split("\n")[0] ?? err.name;
  // fetch's message repeats the URL; what went wrong is at its end.
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error && cause.message) text = cause.message;
  return /connection refused/i.test(text) ? "connection refused" : text;
}

/** Options for {@linkcode startFailure}. */
export interface StartFailureOptions {
  /** The URL probed. */
  url: string;
  /** The port the instance was given (`TQ_PORT`). */
  port: number;
  /** What the instance printed, oldest first; the last five lines are quoted. */
  lines: readonly string[];
}

/** What a failed start says: `problem`, then the URL probed, the port given, what the instance printed. */
export function startFailure(
  problem: string,
  options: StartFailureOptions,
): Error {
  const { url, port } = options;
  const lines = options.lines.slice(-QUOTED_LINES);
  const output = lines.length
    ? `last output: ${lines.map((l) => JSON.stringify(l)).join(" | ")}`
    : "it printed nothing";
  return new Error(
    `${problem}; probed GET ${url} (TQ_PORT=${port}); ${output}`,
  );
}
