import { basename, dirname, resolve } from "node:path";
import { ConfigError } from "../config/mod.ts";
import { createDevHooks } from "../dev/mod.ts";
import { TqServer } from "../server/mod.ts";
import { VERSION } from "../version.ts";
import { parseCliArgs, USAGE } from "./args.ts";
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

/**
 * Runs `tqserver` with the given arguments until it is stopped.
 *
 * @returns The process exit code: 0 clean stop, 1 runtime failure, 2 bad usage or config.
 */
export async function main(args: string[]): Promise<number> {
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
      successor: Deno.env.get("TQ_UPGRADE_PARENT") !== undefined,
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      fail(`tqserver: bad config: ${err.message}`);
      return 2;
    }
    if (err instanceof TypeError || err instanceof RangeError) {
      fail(`tqserver: ${err.message}`);
      return 2;
    }
    fail(`tqserver: cannot start: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
  const stop = (signal: string) => {
    server.shutdown(signal).catch((err) =>
      server.log.error("shutdown failed", { error: err })
    );
  };
  const hup = () => {
    server.log.info("reload requested", { signal: "SIGHUP" });
    server.reload().catch((err) =>
      server.log.error("reload failed", { error: err })
    );
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGHUP", hup);
  // logrotate's convention: reopen the log files it moved away.
  Deno.addSignalListener("SIGUSR1", () => server.reopenLogs());
  await server.finished;
  return server.exitCode;
}
