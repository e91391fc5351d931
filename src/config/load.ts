import {
  basename,
  dirname,
  isAbsolute,
  join,
  posix,
  relative,
  resolve,
} from "node:path";
import { locationOf, setLocations } from "./_locations.ts";
import { SCHEMA } from "./_schema.ts";
import {
  type ConfigPart,
  formatKey,
  type Location,
  validateTree,
} from "./_validate.ts";
import { parseYaml } from "./_yaml.ts";
import {
  defaultBinaryPath,
  defaultConfig,
  defaultWatchPaths,
} from "./defaults.ts";
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
  const fail = failAt(locations);
  unifyWorkersFolder(config, locations, fail);
  foldTimestampCheck(config, locations, fail);
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
  resolveBinaries(config, locations, fail);
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

type Fail = (path: string[], message: string) => never;

function failAt(locations: ReadonlyMap<string, Location>): Fail {
  return (path, message) => {
    const key = formatKey(path);
    const where = locations.get(key);
    throw new ConfigError(
      where?.file ?? "config",
      where?.line ?? 0,
      key,
      message,
    );
  };
}

function where(
  locations: ReadonlyMap<string, Location>,
  key: string,
): string {
  const at = locations.get(key);
  return at ? ` (${at.file}:${at.line})` : "";
}

/** The keys of the design that all name the workers folder. */
const WORKERS_FOLDER_KEYS: readonly string[][] = [
  ["workers", "workers_dir"],
  ["workers", "discovery", "workers_dir"],
  ["deployment", "dev", "resources", "base_path"],
  ["deployment", "prod", "resources", "base_path"],
  ["server", "static", "dev_root"],
];

function normalizeFolder(path: string): string {
  const normal = posix.normalize(path.replaceAll("\\", "/"));
  return normal.length > 1 ? normal.replace(/\/+$/, "") : normal;
}

function getAt(config: Config, path: readonly string[]): unknown {
  let node: unknown = config;
  for (const part of path) node = (node as Record<string, unknown>)[part];
  return node;
}

function setAt(config: Config, path: readonly string[], value: unknown) {
  let node = config as unknown as Record<string, unknown>;
  for (const part of path.slice(0, -1)) {
    node = node[part] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/**
 * `workers.workers_dir`, `workers.discovery.workers_dir`,
 * `deployment.{dev,prod}.resources.base_path` and `server.static.dev_root`
 * are five names of one folder: the ones set must agree, and all of them get
 * the agreed value.
 */
function unifyWorkersFolder(
  config: Config,
  locations: ReadonlyMap<string, Location>,
  fail: Fail,
): void {
  let first: { path: string[]; value: string } | undefined;
  for (const path of WORKERS_FOLDER_KEYS) {
    if (!locations.has(formatKey(path))) continue;
    const value = String(getAt(config, path));
    if (first === undefined) {
      first = { path, value };
      continue;
    }
    if (normalizeFolder(value) !== normalizeFolder(first.value)) {
      const a = formatKey(first.path);
      fail(
        path,
        `"${formatKey(path)}" ("${value}") and "${a}" ("${first.value}")${
          where(locations, a)
        } both name the workers folder but disagree: set them to the same folder, or keep only one`,
      );
    }
  }
  const folder = first ? normalizeFolder(first.value) : "workers";
  for (const path of WORKERS_FOLDER_KEYS) setAt(config, path, folder);
}

/**
 * `workers.timestamp_check.*` (the design's server.yaml) is the default of
 * `deployment.{dev,prod}.timestamp_check.*`; a key set in both places must
 * have one value.
 */
function foldTimestampCheck(
  config: Config,
  locations: ReadonlyMap<string, Location>,
  fail: Fail,
): void {
  const shared = (config.workers as unknown as Record<string, unknown>)
    .timestamp_check as Record<string, unknown> | undefined;
  delete (config.workers as unknown as Record<string, unknown>)
    .timestamp_check;
  if (!shared) return;
  for (const [key, value] of Object.entries(shared)) {
    const outer = `workers.timestamp_check.${key}`;
    for (const mode of ["dev", "prod"] as const) {
      const inner = ["deployment", mode, "timestamp_check", key];
      const settings = config.deployment[mode]
        .timestamp_check as unknown as Record<string, unknown>;
      if (!locations.has(formatKey(inner))) {
        settings[key] = value;
      } else if (settings[key] !== value) {
        fail(
          inner,
          `"${formatKey(inner)}" (${
            JSON.stringify(settings[key])
          }) and "${outer}" (${JSON.stringify(value)})${
            where(locations, outer)
          } disagree: set them to the same value, or keep only one`,
        );
      }
    }
  }
}

/**
 * Fills `binaries.path` from the workers folder and `binaries.format`, checks
 * the two agree and that each mode's `build.output_dir` holds the binary, and
 * points the default executable include pattern at the binary.
 */
function resolveBinaries(
  config: Config,
  locations: ReadonlyMap<string, Location>,
  fail: Fail,
): void {
  const { binaries } = config;
  const workersDir = config.workers.workers_dir;
  if (!locations.has("binaries.path")) {
    binaries.path = defaultBinaryPath(workersDir, binaries.format);
  } else {
    binaries.path = posix.normalize(binaries.path);
    const file = basename(binaries.path);
    if (locations.has("binaries.format") && file !== binaries.format) {
      fail(
        ["binaries", "format"],
        `"binaries.format" ("${binaries.format}") and the file name of "binaries.path" ("${binaries.path}")${
          where(locations, "binaries.path")
        } disagree: make the path end in "/${binaries.format}", or remove "binaries.format"`,
      );
    }
    binaries.format = file;
  }
  // Paths compared as if the root were ROOT: independent of the cwd, and an
  // absolute path stays absolute.
  const at = (...parts: string[]) => posix.resolve(ROOT, ...parts);
  const shown = (abs: string) =>
    abs === ROOT
      ? "."
      : abs.startsWith(`${ROOT}/`)
      ? abs.slice(ROOT.length + 1)
      : abs;
  const binDir = at(posix.dirname(binaries.path));
  const workerDir = at(workersDir, "{worker_name}");
  // An absolute binaries.path under a relative workers folder has no
  // worker-relative form that does not depend on the root: keep it absolute.
  const workerRelative =
    posix.isAbsolute(binaries.path) && !posix.isAbsolute(workersDir)
      ? binDir
      : posix.relative(workerDir, binDir) || ".";
  for (const mode of ["dev", "prod"] as const) {
    const key = ["deployment", mode, "build", "output_dir"];
    const build = config.deployment[mode].build;
    if (!locations.has(formatKey(key))) {
      build.output_dir = workerRelative;
      continue;
    }
    const dir = at(build.output_dir);
    const holds = binDir === dir || binDir.startsWith(`${dir}/`) ||
      dir === "/";
    if (at(workerDir, build.output_dir) === binDir || holds) continue;
    fail(
      key,
      `expected the folder of "binaries.path" ("${binaries.path}"), relative to the worker ("${workerRelative}") or a root-relative folder that holds it ("${
        shown(binDir)
      }" or a parent), got "${build.output_dir}"`,
    );
  }
  if (!locations.has("workers.discovery.include_patterns")) {
    const bin = posix.isAbsolute(binaries.path)
      ? binaries.path
      : `*/${posix.relative(workerDir, at(binaries.path))}`;
    config.workers.discovery.include_patterns = [
      "*/src/main.ts",
      "*/src/main.go",
      bin.replaceAll("{worker_name}", "{name}"),
    ];
  }
}

/** A stand-in root for comparing root-relative paths. */
const ROOT = "/\0root";

function checkCrossFields(
  config: Config,
  locations: ReadonlyMap<string, Location>,
): void {
  const fail = failAt(locations);
  const { port_range_start: start, port_range_end: end } = config.workers;
  if (start > end) {
    if (locations.has("workers.port_range_start")) {
      fail(
        ["workers", "port_range_start"],
        `expected at most "workers.port_range_end" (${end}), got ${start}`,
      );
    }
    fail(
      ["workers", "port_range_end"],
      `expected at least "workers.port_range_start" (${start}), got ${end}`,
    );
  }
  const { server } = config;
  if (
    server.admin.enabled && !server.admin.token &&
    !isLoopback(server.admin.host)
  ) {
    fail(
      ["server", "admin", "host"],
      `expected a loopback address (127.0.0.1, ::1, localhost) unless "server.admin.token" is set, got "${server.admin.host}"`,
    );
  }
  if (
    server.admin.enabled && server.admin.port !== 0 &&
    server.admin.port === server.port
  ) {
    // Blame the key the user wrote: `server.port: 8081` alone clashes with
    // the default admin port, and the error must point at that line.
    if (!locations.has("server.admin.port")) {
      fail(
        ["server", "port"],
        `expected a port other than "server.admin.port" (${server.admin.port}), got ${server.port}`,
      );
    }
    fail(
      ["server", "admin", "port"],
      `expected a port other than "server.port" (${server.port}), got ${server.admin.port}`,
    );
  }
}

/** True for addresses only this machine can reach. */
function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" ||
    /^127\.\d+\.\d+\.\d+$/.test(host);
}
