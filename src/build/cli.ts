/**
 * `deno task build`: builds the TypeScript and Go workers of a project into
 * their `binaries.path` (default `workers/{name}/bin/{name}`), incrementally,
 * with the format and flags of `deployment.{mode}.build` (`ldflags` for Go). scripts/build-dev.sh and scripts/build-prod.sh
 * run this file.
 *
 * @example
 * ```sh
 * deno run --allow-all src/build/cli.ts --mode prod --format bundle api_users
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  type Config,
  ConfigError,
  discoverWorkers,
  loadConfig,
  resolveMode,
} from "../config/mod.ts";
import { createLogger, type Logger } from "../log/mod.ts";
import { Builder, type BuildResult, type BuildTarget } from "./builder.ts";
import { GoBuilder } from "./go.ts";

/** Options of {@linkcode runBuildCli}. */
export interface BuildCliOptions {
  /** Directory that `--root` is relative to. Default `Deno.cwd()`. */
  cwd?: string;
  /** Environment lookup (`DEPLOYMENT_MODE`). Default `Deno.env.get`. */
  env?: (name: string) => string | undefined;
  /** Progress lines. Default: a logger on stderr (warnings only with `--quiet`). */
  logger?: Logger;
  /** Receives help text. Default: stdout. */
  stdout?: (text: string) => void;
  /** Receives usage errors and build error details. Default: stderr. */
  stderr?: (text: string) => void;
}

/** Usage of the build command. */
export const BUILD_USAGE =
  `Usage: deno task build [--root DIR] [--config FILE] [--mode dev|prod]
                        [--format bundle|compile] [--target TRIPLE] [--force] [--quiet] [worker...]

Builds the TypeScript workers (workers/{name}/src/main.ts, with deno) and the Go workers
(workers/{name}/src/main.go, with go build and deployment.{mode}.build.ldflags) into
binaries.path (default workers/{name}/bin/{name}), only those whose sources changed
unless --force. With worker names, only those.

  --root DIR        project root (default: the working directory)
  --config FILE     server.yaml to read (default: config/server.yaml)
  --mode MODE       dev or prod: which deployment.{mode}.build settings apply
                    (default: DEPLOYMENT_MODE, then the config, then dev)
  --format FORMAT   bundle (needs deno at run time) or compile (standalone executable)
                    (default: deployment.{mode}.build.format: bundle in dev, compile in prod)
  --target TRIPLE   deno compile --target (default: deployment.{mode}.build.target, or this host)
  --force           rebuild even when a binary is up to date
  --quiet           print only warnings and errors

Exit codes: 0 every build succeeded or was up to date, 1 a build failed, 2 bad usage or config.
`;

const encoder = new TextEncoder();

function writeTo(stream: { writeSync(p: Uint8Array): number }) {
  return (text: string) => {
    const bytes = encoder.encode(text.endsWith("\n") ? text : `${text}\n`);
    let written = 0;
    while (written < bytes.length) {
      written += stream.writeSync(bytes.subarray(written));
    }
  };
}

class UsageError extends Error {}

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        root: { type: "string" },
        config: { type: "string" },
        mode: { type: "string" },
        format: { type: "string" },
        target: { type: "string" },
        force: { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
}

function pickTargets(
  specs: Awaited<ReturnType<typeof discoverWorkers>>,
  names: string[],
  log: Logger,
): (BuildTarget & { go: boolean })[] {
  const buildable = specs.filter((s) => s.kind !== "binary" && s.entry);
  for (const name of names) {
    const spec = specs.find((s) => s.name === name);
    if (!spec) {
      const known = buildable.map((s) => `"${s.name}"`).join(", ") || "none";
      throw new UsageError(
        `Unknown worker "${name}": the TypeScript and Go workers are ${known}`,
      );
    }
    if (spec.kind === "binary") {
      log.warn("worker is a prebuilt executable, nothing to build", {
        worker: name,
      });
    }
  }
  return buildable
    .filter((s) => names.length === 0 || names.includes(s.name))
    .map((s) => ({
      name: s.name,
      entry: s.entry!,
      binPath: s.binPath,
      dir: s.dir,
      go: s.kind === "go",
    }));
}

function projectConfig(root: string): string | undefined {
  return ["deno.json", "deno.jsonc"].map((name) => join(root, name))
    .find((path) => existsSync(path));
}

function describeFailure(root: string, result: BuildResult): string {
  const e = result.error;
  const where = e?.file
    ? `  ${relative(root, e.file)}${e.line ? `:${e.line}` : ""}${
      e.column ? `:${e.column}` : ""
    }\n`
    : "";
  const message = (e?.message ?? "unknown error").replace(/^/gm, "  ");
  return `build of "${result.name}" failed\n${where}${message}\n`;
}

/**
 * Runs the build command with `args` (without the program name) and returns
 * its exit code: 0 all built or fresh, 1 a build failed, 2 bad usage or config.
 *
 * @example
 * ```ts
 * Deno.exit(await runBuildCli(["--mode", "dev", "index"]));
 * ```
 */
export async function runBuildCli(
  args: string[],
  options: BuildCliOptions = {},
): Promise<number> {
  const {
    cwd = Deno.cwd(),
    env = (name: string) => Deno.env.get(name),
    stdout = writeTo(Deno.stdout),
    stderr = writeTo(Deno.stderr),
  } = options;
  let log = options.logger ?? createLogger();
  let root = cwd;
  try {
    const { values, positionals } = parse(args);
    if (values.help) {
      stdout(BUILD_USAGE);
      return 0;
    }
    if (values.quiet && !options.logger) log = createLogger({ level: "warn" });
    const format = values.format;
    if (format !== undefined && format !== "bundle" && format !== "compile") {
      throw new UsageError(
        `Invalid --format "${format}": expected "bundle" or "compile"`,
      );
    }
    root = resolve(cwd, values.root ?? ".");
    const loaded = await loadConfig({
      root,
      ...(values.config ? { configFile: values.config } : {}),
    });
    for (const warning of loaded.warnings) {
      log.warn("config warning", { problem: warning });
    }
    const config: Config = loaded.config;
    const mode = resolveMode({
      flag: values.mode,
      env: env("DEPLOYMENT_MODE"),
      config,
    });
    const specs = await discoverWorkers(root, config, {
      warn: (problem) => log.warn("worker skipped", { problem }),
    });
    const targets = pickTargets(specs, positionals, log);
    if (targets.length === 0) {
      log.info("no TypeScript or Go workers to build", { root });
      return 0;
    }
    const settings = config.deployment[mode].build;
    const configPath = projectConfig(root);
    const target = values.target || settings.target;
    const builder = new Builder({
      format: format ?? settings.format,
      parallel: settings.parallel_builds,
      permissions: settings.permissions,
      check: settings.check,
      minify: settings.minify,
      force: values.force ?? false,
      logger: log,
      timeoutMs: settings.timeout_ms,
      timeoutKey: `deployment.${mode}.build.timeout_ms`,
      ...(target ? { target } : {}),
      ...(configPath ? { configPath } : {}),
    });
    const goBuilder = new GoBuilder({
      ldflags: settings.ldflags,
      parallel: settings.parallel_builds,
      timeoutMs: settings.timeout_ms,
      timeoutKey: `deployment.${mode}.build.timeout_ms`,
      force: values.force ?? false,
      logger: log,
    });
    log.info("building workers", {
      mode,
      format: builder.format,
      workers: targets.map((t) => t.name).join(","),
    });
    const strip = ({ go: _, ...t }: BuildTarget & { go: boolean }) => t;
    const ts = targets.filter((t) => !t.go).map(strip);
    const go = targets.filter((t) => t.go).map(strip);
    const results = [
      ...(ts.length ? await builder.buildAll(ts) : []),
      ...(go.length ? await goBuilder.buildAll(go) : []),
    ];
    const failed = results.filter((r) => r.status === "failed");
    for (const result of failed) stderr(describeFailure(root, result));
    return failed.length > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      stderr(`build: ${err.message}\n\n${BUILD_USAGE}`);
      return 2;
    }
    if (err instanceof ConfigError || err instanceof RangeError) {
      stderr(`build: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

if (import.meta.main) {
  Deno.exit(await runBuildCli(Deno.args));
}
