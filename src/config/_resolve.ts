// Folder-private: the steps of loadConfig() after the files are merged over
// the defaults: keys of the design that name one thing are unified, derived
// defaults filled in, and settings that must agree with each other checked.

import { basename, posix } from "node:path";
import { formatKey, type Location } from "./_validate.ts";
import { defaultBinaryPath } from "./defaults.ts";
import { type Config, ConfigError } from "./types.ts";

/** Throws a ConfigError at the file and line where the key at `path` was set. */
export type Fail = (path: string[], message: string) => never;

/** The {@linkcode Fail} of a config whose keys were set at `locations`. */
export function failAt(locations: ReadonlyMap<string, Location>): Fail {
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

/** Where the keys of a loaded config were set, and how to fail at one of them. */
export interface KeyLocations {
  /** Where each key set in a file was set. */
  locations: ReadonlyMap<string, Location>;
  /** Throws a ConfigError at the key's file and line. */
  fail: Fail;
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
export function unifyWorkersFolder(
  config: Config,
  keys: KeyLocations,
): void {
  const { locations, fail } = keys;
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
export function foldTimestampCheck(
  config: Config,
  keys: KeyLocations,
): void {
  const { locations, fail } = keys;
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
export function resolveBinaries(
  config: Config,
  keys: KeyLocations,
): void {
  const { locations, fail } = keys;
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

/**
 * Checks the settings that must agree with each other: the worker port
 * range, the admin listener's host without a token, and the two ports.
 */
export function checkCrossFields(
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
