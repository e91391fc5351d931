import { basename, dirname, resolve } from "node:path";
import { ConfigError } from "../config/mod.ts";
import { createDevHooks } from "../dev/mod.ts";
import { StartCancelled, TqServer, UPGRADE_PARENT_ENV } from "../server/mod.ts";
import { VERSION } from "../version.ts";
import { parseCliArgs, USAGE } from "./args.ts";
import { ProcessSignals } from "./signals.ts";
import { runsFromSource } from "../runtime.ts";

/** The project root: `--root`, else (compiled) two levels above the binary, else the working directory. */
export function defaultRoot(root: string | undefined): string {
  if (root) return resolve(root);
  const exec = Deno.execPath();
  if (
    !runsFromSource() && basename(dirname(exec)) === "bin" &&
    basename(dirname(dirname(exec))) === "server"
  ) {
    return resolve(dirname(exec), "..", "..");
  }
  return Deno.cwd();
}

function say(text: string): void {
  console.log(text);
}

function fail(text: string): void {
  console.error(text);
}

/** Options for {@linkcode main}. */
export interface MainOptions {
  /** Signal handling installed at the first line of `main.ts`. Default: installed here. */
  signals?: ProcessSignals;
}

/**
 * Runs `tqserver` with the given arguments until it is stopped. A SIGTERM or
 * SIGINT during startup cancels builds and starts, stops what was spawned and
 * exits 0; a SIGHUP during startup runs once the server is ready.
 *
 * @returns The process exit code: 0 clean stop, 1 runtime failure, 2 bad usage or config.
 */
export async function main(
  args: string[],
  options: MainOptions = {},
): Promise<number> {
  const { signals = ProcessSignals.install() } = options;
  let cli;
  try {
    cli = parseCliArgs(args);
  } catch (err) {
    fail(`tqserver: ${err instanceof Error ? err.message : err}\n\n${USAGE}`);
    return 2;
  }
  if (cli.help) {
    say(USAGE);
    return 0;
  }
  if (cli.version) {
    say(`tqserver ${VERSION}`);
    return 0;
  }
  let server: TqServer;
  try {
    server = await TqServer.start({
      root: defaultRoot(cli.root),
      // A compiled server finds its dashboard beside its binary (server/bin/../public/admin).
      ...(runsFromSource() ? {} : {
        dashboardDir: resolve(
          dirname(Deno.execPath()),
          "..",
          "public",
          "admin",
        ),
      }),
      configFile: cli.config,
      mode: cli.mode,
      port: cli.port,
      quiet: cli.quiet,
      devHooks: (s) => s.mode === "dev" ? createDevHooks(s) : undefined,
      successor: Deno.env.get(UPGRADE_PARENT_ENV) !== undefined,
      signal: signals.stopping,
    });
  } catch (err) {
    if (err instanceof StartCancelled) {
      // Asked to stop before it was ready: everything spawned is gone; a clean stop.
      return 0;
    }
    if (err instanceof ConfigError) {
      fail(`tqserver: bad config: ${err.message}`);
      return 2;
    }
    // A bad value (`--mode`, `DEPLOYMENT_MODE`, a build setting) is a RangeError.
    // A TypeError is a bug or a runtime failure (exit 1 below), not bad usage.
    if (err instanceof RangeError) {
      fail(`tqserver: ${err.message}`);
      return 2;
    }
    fail(`tqserver: cannot start: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
  signals.handle({
    stop: (signal) => {
      server.shutdown(signal).catch((err) =>
        server.log.error("shutdown failed", { error: err })
      );
    },
    hup: () => {
      server.log.info("reload requested", { signal: "SIGHUP" });
      server.reload().catch((err) =>
        server.log.error("reload failed", { error: err })
      );
    },
    // logrotate's convention: reopen the log files it moved away.
    reopen: () => server.reopenLogs(),
  });
  await server.finished;
  const successor = server.foregroundSuccessor;
  if (successor) return await keepForeground(server, successor, signals);
  return server.exitCode;
}

/**
 * After a self-upgrade started from a terminal: this process stays the
 * terminal's job, so the shell keeps waiting and Ctrl+C still reaches the
 * server. Its signals go to the successor; its exit code is the successor's.
 */
async function keepForeground(
  server: TqServer,
  successor: { pid: number; status: Promise<Deno.CommandStatus> },
  signals: ProcessSignals,
): Promise<number> {
  const forward = (signal: Deno.Signal) => {
    try {
      Deno.kill(successor.pid, signal);
    } catch {
      // It has exited: its status ends this process too.
    }
  };
  signals.handle({
    stop: forward,
    hup: () => forward("SIGHUP"),
    reopen: () => forward("SIGUSR1"),
  });
  server.log.info("staying in the foreground for the new server", {
    successor_pid: successor.pid,
    why: "stdin is a terminal: Ctrl+C and signals to this pid reach it",
  });
  const status = await successor.status;
  return status.signal ? 128 + signalNumber(status.signal) : status.code;
}

function signalNumber(signal: Deno.Signal): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<
    string,
    number
  >)[signal] ?? 1;
}
