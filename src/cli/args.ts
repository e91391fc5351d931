import { parseArgs } from "node:util";

/** Parsed command line of `tqserver`. */
export interface CliArgs {
  mode: string | undefined;
  config: string | undefined;
  root: string | undefined;
  port: number | undefined;
  quiet: boolean;
  help: boolean;
  version: boolean;
}

/** The `--help` text. */
export const USAGE = `Usage: tqserver [options]

Options:
  --mode dev|prod   deployment mode (default: DEPLOYMENT_MODE, then config, then dev)
  --config FILE     server config file (default: config/server.yaml under the root;
                    deployment.yaml is read from the same folder)
  --root DIR        project root (default: the working directory; for a compiled
                    server/bin/tqserver, the folder two levels above it)
  --port N          public port (overrides server.port)
  --quiet           nothing on stdout; warnings and errors on stderr (log files get everything)
  --help            show this help
  --version         show the version

Signals: SIGHUP reloads what changed (prod), SIGTERM/SIGINT stop gracefully.
Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or config.`;

/**
 * Parses `tqserver` arguments.
 *
 * @throws {TypeError} With a message naming the bad argument.
 */
export function parseCliArgs(args: string[]): CliArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        mode: { type: "string" },
        config: { type: "string" },
        root: { type: "string" },
        port: { type: "string" },
        quiet: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
    }));
  } catch (err) {
    throw new TypeError(err instanceof Error ? err.message : String(err), {
      cause: err,
    });
  }
  if (
    values.mode !== undefined && values.mode !== "dev" && values.mode !== "prod"
  ) {
    throw new TypeError(
      `Invalid --mode "${values.mode}": expected "dev" or "prod"`,
    );
  }
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port < 1 || port > 65535) {
      throw new TypeError(
        `Invalid --port "${values.port}": expected an integer from 1 to 65535`,
      );
    }
  }
  return {
    mode: values.mode,
    config: values.config,
    root: values.root,
    port,
    quiet: values.quiet ?? false,
    help: values.help ?? false,
    version: values.version ?? false,
  };
}
