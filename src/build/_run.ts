/** What a finished command printed and how it ended. */
export interface RunResult {
  /** Exit code 0. */
  success: boolean;
  /** Exit code. */
  code: number;
  /** Everything written to stdout, as text. */
  stdout: string;
  /** Everything written to stderr, as text. */
  stderr: string;
  /** Set when the command was killed: it ran past `timeoutMs`, or `signal` aborted. */
  killed?: "timeout" | "aborted";
}

/** Options of one {@linkcode CommandRunner} call. */
export interface RunOptions {
  /** Working directory of the command. */
  cwd: string;
  /** Kill the command (SIGKILL) once it has run this long. Default: no limit. */
  timeoutMs?: number;
  /** Kill the command (SIGKILL) when this aborts. */
  signal?: AbortSignal;
}

/** Runs a command to completion; injectable so tests can replace `deno`. */
export type CommandRunner = (
  command: string,
  args: string[],
  options: RunOptions,
) => Promise<RunResult>;

const decoder = new TextDecoder();

/**
 * Runs `command` with `Deno.Command`, stdin closed, output captured, colours
 * and deno's update check off; SIGKILLed after `timeoutMs` or on `signal`.
 */
export async function runCommand(
  command: string,
  args: string[],
  options: RunOptions,
): Promise<RunResult> {
  const { cwd, timeoutMs, signal } = options;
  signal?.throwIfAborted();
  const child = new Deno.Command(command, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", RUST_BACKTRACE: "0" },
  }).spawn();
  let killed: RunResult["killed"];
  const kill = (why: "timeout" | "aborted") => {
    killed ??= why;
    try {
      child.kill("SIGKILL");
    } catch {
      // It exited meanwhile.
    }
  };
  const timer = timeoutMs !== undefined && timeoutMs > 0
    ? setTimeout(() => kill("timeout"), timeoutMs)
    : undefined;
  const onAbort = () => kill("aborted");
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const out = await child.output();
    return {
      success: out.success && !killed,
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
      ...(killed ? { killed } : {}),
    };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}
