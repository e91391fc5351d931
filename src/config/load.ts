import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { locationOf, setLocations } from "./_locations.ts";
import { SCHEMA } from "./_schema.ts";
import { type ConfigPart, type Location, validateTree } from "./_validate.ts";
import {
  checkCrossFields,
  failAt,
  foldTimestampCheck,
  resolveBinaries,
  unifyWorkersFolder,
} from "./_resolve.ts";
import { parseYaml } from "./_yaml.ts";
import { defaultConfig, defaultWatchPaths } from "./defaults.ts";
import {
  type Config,
  ConfigError,
  type DeployTarget,
  type Mode,
} from "./types.ts";

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** Project root (absolute). */
  root: string;
  /**
   * server.yaml path (absolute or root-relative). Default `config/server.yaml`.
   * deployment.yaml is looked up in the same directory. When given, the file
   * must exist.
   */
  configFile?: string;
  /** Environment lookup for `${VAR}` expansion. Default `Deno.env.get`. */
  env?: (name: string) => string | undefined;
}

/** A validated configuration and what was noticed while reading it. */
export interface LoadedConfig {
  /** The configuration with every default filled in. */
  config: Config;
  /** Absolute paths of the config files that exist. */
  files: string[];
  /** Problems that do not stop tqserver (unknown keys, Go-only keys), each naming file and line. */
  warnings: string[];
}

/**
 * Reads `config/server.yaml` and `config/deployment.yaml` (both optional),
 * expands `${VAR}` and `${VAR:-default}`, validates every key and fills in
 * every default.
 *
 * @example
 * ```ts
 * const { config, warnings } = await loadConfig({ root: Deno.cwd() });
 * config.server.port; // 8080 unless the file says otherwise
 * ```
 *
 * @throws {ConfigError} When a file cannot be read, is not valid YAML, or has
 * a value of the wrong type or range; the message names file, line and key.
 */
export async function loadConfig(
  options: LoadConfigOptions,
): Promise<LoadedConfig> {
  const {
    root,
    configFile,
    env = (name: string) => Deno.env.get(name),
  } = options;
  const serverPath = resolve(root, configFile ?? join("config", "server.yaml"));
  const deploymentPath = join(dirname(serverPath), "deployment.yaml");
  const files: string[] = [];
  const warnings: string[] = [];
  const locations = new Map<string, Location>();
  const partials: ConfigPart[] = [];
  for (const path of [serverPath, deploymentPath]) {
    const file = displayName(root, path);
    const text = await readOptional(
      path,
      file,
      path === serverPath && configFile !== undefined,
    );
    if (text === undefined) continue;
    files.push(path);
    const warn = (message: string) => warnings.push(message);
    const tree = parseYaml(text, { file, env, warn });
    if (tree === null) continue;
    partials.push(validateTree(tree, SCHEMA, { file, warn, locations }));
  }
  const config = defaultConfig();
  for (const partial of partials) {
    merge(config as unknown as Record<string, unknown>, partial);
  }
  const keys = { locations, fail: failAt(locations) };
  unifyWorkersFolder(config, keys);
  foldTimestampCheck(config, keys);
  // `server.*_timeout_seconds` are the defaults of the worker settings of the
  // same name; `workers.default` and `workers.paths` override them.
  for (
    const key of ["read_timeout_seconds", "write_timeout_seconds"] as const
  ) {
    if (!locations.has(`workers.default.${key}`)) {
      config.workers.default[key] = config.server[key];
    }
  }
  for (const mode of ["dev", "prod"] as const) {
    if (!locations.has(`deployment.${mode}.file_watcher.watch_patterns`)) {
      config.deployment[mode].file_watcher.watch_patterns = defaultWatchPaths(
        config.workers.workers_dir,
      );
    }
  }
  resolveBinaries(config, keys);
  // Targets are read as partial mappings; give each one its defaults.
  const targets = config.deployment.targets as Record<
    string,
    Partial<DeployTarget>
  >;
  for (const [name, target] of Object.entries(targets)) {
    config.deployment.targets[name] = {
      hosts: target.hosts ?? [],
      path: target.path ?? "",
      ssh_options: target.ssh_options ?? "",
      admin_url: target.admin_url ?? "",
      batch: target.batch ?? 1,
      canary_seconds: target.canary_seconds ?? 60,
      keep_releases: target.keep_releases ?? 5,
    };
  }
  checkCrossFields(config, locations);
  setLocations(config, locations);
  return { config, files, warnings };
}

/**
 * Where `key` (formatted, e.g. `server.idle_timeout_seconds`) was set in the
 * files `config` was loaded from, as `file:line`; undefined when it was not.
 *
 * @example
 * ```ts
 * whereSet(config, "server.idle_timeout_seconds"); // "config/server.yaml:7"
 * ```
 */
export function whereSet(config: Config, key: string): string | undefined {
  const at = locationOf(config, key);
  return at ? `${at.file}:${at.line}` : undefined;
}

/** Options of {@linkcode resolveMode}. */
export interface ResolveModeOptions {
  /** `--mode` flag value. Default: not given. */
  flag?: string | undefined;
  /** `DEPLOYMENT_MODE` environment value. Default: not set. */
  env?: string | undefined;
  /** The loaded configuration (`server.deployment_mode`, `deployment.mode`). */
  config: Config;
}

/**
 * Picks the mode: `--mode` > `DEPLOYMENT_MODE` > `server.deployment_mode` >
 * `deployment.mode` > `"dev"`. An empty flag or variable counts as not given.
 *
 * @example
 * ```ts
 * resolveMode({ flag: undefined, env: "prod", config }); // "prod"
 * ```
 *
 * @throws {RangeError} When the flag or `DEPLOYMENT_MODE` is not `dev` or `prod`.
 */
export function resolveMode(options: ResolveModeOptions): Mode {
  const { flag, env, config } = options;
  if (flag) return checkMode(flag, "--mode");
  if (env) return checkMode(env, "DEPLOYMENT_MODE");
  return config.server.deployment_mode ?? config.deployment.mode ?? "dev";
}

function checkMode(value: string, source: string): Mode {
  if (value === "dev" || value === "prod") return value;
  throw new RangeError(
    `Invalid ${source} "${value}": expected "dev" or "prod"`,
  );
}

async function readOptional(
  path: string,
  file: string,
  required: boolean,
): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound && !required) return undefined;
    const reason = err instanceof Deno.errors.NotFound
      ? "file not found"
      : `cannot read the file: ${err instanceof Error ? err.message : err}`;
    throw new ConfigError(file, 0, "", reason, { cause: err });
  }
}

/** Root-relative name of a file, or its absolute path when outside the root. */
function displayName(root: string, path: string): string {
  const rel = relative(root, path);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deep-merges validated values into `target`; lists replace, undefined is skipped. */
function merge(target: Record<string, unknown>, source: ConfigPart): void {
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined) continue;
    const current = target[key];
    if (isPlainObject(value) && isPlainObject(current)) merge(current, value);
    else target[key] = value;
  }
}
