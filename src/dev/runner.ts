/**
 * `deno task dev` runs this: the dev server as a child process, started again
 * whenever it exits with {@linkcode RESTART_EXIT_CODE} (its own source
 * changed). The child stays in the terminal's process group, so Ctrl+C stops
 * it after any number of restarts — a detached successor would outlive the
 * terminal's job.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { RESTART_EXIT_CODE, RUNNER_ENV } from "../dev_contract.ts";

export { RESTART_EXIT_CODE, RUNNER_ENV };

/** Options for {@linkcode runDev}. */
export interface RunDevOptions {
  /** The server entry point. Default: this repository's `main.ts`. */
  main?: string;
}

/**
 * Runs `main.ts` with `args` until it exits with anything but
 * {@linkcode RESTART_EXIT_CODE}; forwards SIGINT, SIGTERM and SIGHUP to it
 * (a SIGHUP would otherwise kill the runner and leave the server behind).
 *
 * @returns The server's last exit code.
 */
export async function runDev(
  args: string[],
  options: RunDevOptions = {},
): Promise<number> {
  const { main = fileURLToPath(new URL("../../main.ts", import.meta.url)) } =
    options;
  while (true) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", main, ...args],
      env: { [RUNNER_ENV]: "1" },
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const forward = (signal: Deno.Signal) => () => {
      try {
        child.kill(signal);
      } catch {
        // The child has exited already.
      }
    };
    const onInt = forward("SIGINT");
    const onTerm = forward("SIGTERM");
    const onHup = forward("SIGHUP");
    Deno.addSignalListener("SIGINT", onInt);
    Deno.addSignalListener("SIGTERM", onTerm);
    Deno.addSignalListener("SIGHUP", onHup);
    const status = await child.status;
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGHUP", onHup);
    if (status.code !== RESTART_EXIT_CODE) {
      return status.code;
    }
  }
}

if (import.meta.main) Deno.exit(await runDev(Deno.args));
