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
}

/** Options of one {@linkcode CommandRunner} call. */
export interface RunOptions {
  /** Working directory of the command. */
  cwd: string;
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
 * and deno's update check off.
 */
export async function runCommand(
  command: string,
  args: string[],
  options: RunOptions,
): Promise<RunResult> {
  const out = await new Deno.Command(command, {
    args,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", RUST_BACKTRACE: "0" },
  }).output();
  return {
    success: out.success,
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}
