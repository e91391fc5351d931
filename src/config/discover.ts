import { isAbsolute, join, matchesGlob, relative, resolve } from "node:path";
import { routeMatches } from "../routes/route_table.ts";
import { locationOf } from "./_locations.ts";
import { checkRoute } from "./_schema.ts";
import { type Config, ConfigError, type WorkerSettings } from "./types.ts";

/** How a worker is run: built from `src/main.ts` (Deno) or `src/main.go` (go build), or a prebuilt executable. */
export type WorkerKind = "typescript" | "go" | "binary";

/** One worker folder, with its route and merged settings. */
export interface WorkerSpec {
  /** Folder name. */
  name: string;
  /** Absolute `workers/{name}`. */
  dir: string;
  /** Route prefix, `/` or `/a/b`. */
  route: string;
  kind: WorkerKind;
  /** Absolute `src/main.ts` of a TypeScript worker, `src/main.go` of a Go worker. */
  entry: string | undefined;
  /** Absolute path of the executable, from `binaries.path` (default `bin/{name}`; for a built worker it may not exist yet). */
  binPath: string;
  /** `workers.default` merged with every matching `workers.paths` prefix, shorter prefixes first, env maps merged. */
  settings: WorkerSettings;
}

/** Options of {@linkcode discoverWorkers}. */
export interface DiscoverOptions {
  /** Receives a message for every folder skipped and every unused route. Default: ignore them. */
  warn?: (message: string) => void;
}

const NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** The reserved prefix of the dev endpoints (live reload, events). */
const TQ_PREFIX = "/_tq";

/**
 * The route a worker gets from its folder name: `index` → `/`, otherwise `/`
 * plus the name with `_` turned into `/`.
 *
 * @example
 * ```ts
 * defaultRoute("api_users"); // "/api/users"
 * ```
 */
export function defaultRoute(name: string): string {
  return name === "index" ? "/" : `/${name.replaceAll("_", "/")}`;
}

/**
 * The settings of a worker at `route`: `workers.default`, then every
 * `workers.paths` prefix the route is at or under, shorter prefixes first;
 * `env` maps are merged key by key.
 *
 * @example
 * ```ts
 * settingsFor("/api/users", config).max_requests;
 * ```
 */
export function settingsFor(route: string, config: Config): WorkerSettings {
  const base = config.workers.default;
  const settings: WorkerSettings = { ...base, env: { ...base.env } };
  const prefixes = Object.keys(config.workers.paths)
    .filter((prefix) => routeMatches(prefix, route))
    .sort((a, b) => a.length - b.length);
  for (const prefix of prefixes) {
    const { env, ...rest } = config.workers.paths[prefix] ?? {};
    for (const [key, value] of Object.entries(rest)) {
      if (value !== undefined) Object.assign(settings, { [key]: value });
    }
    if (env) Object.assign(settings.env, env);
  }
  return settings;
}

/** Options of {@linkcode binaryPath}. */
export interface BinaryPathOptions {
  /** Project root (absolute): a relative `binaries.path` is resolved against it. */
  root: string;
  /** The worker's name, put in place of `{worker_name}`. */
  name: string;
}

/**
 * The absolute executable path of worker `name` from `binaries.path`.
 *
 * @example
 * ```ts
 * binaryPath(config, { root: "/srv/app", name: "index" }); // "/srv/app/workers/index/bin/index"
 * ```
 */
export function binaryPath(config: Config, options: BinaryPathOptions): string {
  const { root, name } = options;
  return resolve(root, config.binaries.path.replaceAll("{worker_name}", name));
}

/**
 * Finds the workers in `{root}/{workers.workers_dir}`: the folders in which a
 * file matches one of `workers.discovery.include_patterns`; each one is built
 * from `src/main.ts` (TypeScript) or `src/main.go` (Go), or else runs its
 * executable at `binaries.path`. Other folders are skipped with a warning.
 * Sorted by name.
 *
 * @example
 * ```ts
 * const specs = await discoverWorkers(root, config, { warn: console.warn });
 * ```
 *
 * @throws {ConfigError} When a route is inside a reserved prefix
 * (`server.static.url_prefix`, `/_tq`) or two workers share a route.
 */
export async function discoverWorkers(
  root: string,
  config: Config,
  options: DiscoverOptions = {},
): Promise<WorkerSpec[]> {
  const { warn = () => {} } = options;
  const workersDir = resolve(root, config.workers.workers_dir);
  const shown = (path: string) => relative(root, path) || ".";
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(workersDir)) {
      if (entry.name.startsWith(".")) continue;
      if (
        entry.isDirectory ||
        (entry.isSymlink && await isDir(join(workersDir, entry.name)))
      ) {
        names.push(entry.name);
      }
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      warn(`Workers folder "${shown(workersDir)}" does not exist: no workers`);
      return [];
    }
    throw err;
  }
  names.sort();

  const specs: WorkerSpec[] = [];
  for (const name of names) {
    const dir = join(workersDir, name);
    if (!NAME.test(name)) {
      const suggestion = name.toLowerCase().replace(/[^a-z0-9_-]/g, "_")
        .replace(/^[_-]+/, "");
      warn(
        `Skipped "${
          shown(dir)
        }": a worker's folder name uses only lowercase letters, digits, "_" and "-", and starts with a letter or digit${
          NAME.test(suggestion) ? ` (rename it, e.g. to "${suggestion}")` : ""
        }`,
      );
      continue;
    }
    const patterns = config.workers.discovery.include_patterns;
    if (!(await includes(workersDir, name, patterns))) {
      warn(
        `Skipped "${shown(dir)}": no file in it matches ` +
          `"workers.discovery.include_patterns" (${
            patterns.map((p) => `"${p}"`).join(", ")
          })`,
      );
      continue;
    }
    const ts = join(dir, "src", "main.ts");
    const go = join(dir, "src", "main.go");
    const binPath = binaryPath(config, { root, name });
    const [hasTs, hasGo] = await Promise.all([isFile(ts), isFile(go)]);
    let kind: WorkerKind;
    if (hasTs) {
      kind = "typescript";
      if (hasGo) {
        warn(
          `"${
            shown(dir)
          }" has both src/main.ts and src/main.go: building src/main.ts`,
        );
      }
    } else if (hasGo) {
      kind = "go";
    } else {
      const bin = await statOrUndefined(binPath);
      if (bin?.isFile && isExecutable(bin)) {
        kind = "binary";
      } else if (bin?.isFile) {
        warn(
          `Skipped "${shown(dir)}": "${
            relative(dir, binPath)
          }" is not executable (run chmod +x) and there is no src/main.ts or src/main.go`,
        );
        continue;
      } else {
        warn(
          `Skipped "${
            shown(dir)
          }": it has neither src/main.ts, src/main.go nor an executable ${
            relative(dir, binPath)
          }`,
        );
        continue;
      }
    }
    const route = config.workers.routes[name] ?? defaultRoute(name);
    specs.push({
      name,
      dir,
      route,
      kind,
      entry: kind === "typescript" ? ts : kind === "go" ? go : undefined,
      binPath,
      settings: settingsFor(route, config),
    });
  }

  for (const spec of specs) {
    if (spec.kind !== "typescript") continue;
    for (const key of ["go_max_procs", "go_mem_limit"] as const) {
      if (!spec.settings[key]) continue;
      warn(
        `"${key}" has no effect for worker "${spec.name}": it is a TypeScript worker (GOMAXPROCS and GOMEMLIMIT are for Go workers)`,
      );
    }
  }

  checkRoutes(specs, config, shown(workersDir));
  for (const name of Object.keys(config.workers.routes)) {
    if (specs.some((spec) => spec.name === name)) continue;
    const where = locationOf(config, `workers.routes.${name}`);
    const prefix = where ? `${where.file}:${where.line}: ` : "";
    warn(
      `${prefix}"workers.routes.${name}" names no worker (no usable folder "${
        shown(join(workersDir, name))
      }")`,
    );
  }
  return specs;
}

function checkRoutes(specs: WorkerSpec[], config: Config, dir: string): void {
  const reserved = [TQ_PREFIX];
  if (config.server.static.enabled) {
    reserved.unshift(config.server.static.url_prefix);
  }
  const errorFor = (spec: WorkerSpec, message: string): ConfigError => {
    const key = `workers.routes.${spec.name}`;
    if (config.workers.routes[spec.name] !== undefined) {
      const where = locationOf(config, key);
      return new ConfigError(
        where?.file ?? "config",
        where?.line ?? 0,
        key,
        message,
      );
    }
    return new ConfigError(`${dir}/${spec.name}`, 0, "", message);
  };
  for (const spec of specs) {
    // Overrides were checked when loading; a name like `a_` or `a__b` gives
    // "/a/" or "/a//b", which no request path would match as intended.
    const expected = checkRoute(spec.route);
    if (expected !== undefined) {
      throw errorFor(
        spec,
        `the default route "${spec.route}" of worker "${spec.name}" is not ${expected}; set "workers.routes.${spec.name}" or rename the folder`,
      );
    }
    const prefix = reserved.find((p) => routeMatches(p, spec.route));
    if (prefix === undefined) continue;
    const source = config.workers.routes[spec.name] !== undefined
      ? `route "${spec.route}"`
      : `default route "${spec.route}" of worker "${spec.name}"`;
    throw errorFor(
      spec,
      `the ${source} is inside the reserved prefix "${prefix}"; set "workers.routes.${spec.name}" to another route`,
    );
  }
  const byRoute = new Map<string, WorkerSpec>();
  for (const spec of specs) {
    const other = byRoute.get(spec.route);
    if (other === undefined) {
      byRoute.set(spec.route, spec);
      continue;
    }
    // Blame the worker whose route was set in the file, when one was.
    const blamed = config.workers.routes[spec.name] === undefined &&
        config.workers.routes[other.name] !== undefined
      ? other
      : spec;
    throw errorFor(
      blamed,
      `workers "${other.name}" and "${spec.name}" both have the route "${spec.route}"`,
    );
  }
}

const GLOB_CHARS = /[*?[\]{}]/;

/** Folders never searched for include patterns. */
const SKIP_DIRS = new Set([".git", "node_modules"]);

/**
 * True when a file in `{workersDir}/{name}` matches one of `patterns` (globs
 * relative to the workers folder, `{name}` standing for the folder name).
 */
async function includes(
  workersDir: string,
  name: string,
  patterns: readonly string[],
): Promise<boolean> {
  let files: string[] | undefined;
  for (const raw of patterns) {
    const pattern = raw.replaceAll("{name}", name)
      .replaceAll("{worker_name}", name).replace(/^\.\//, "");
    if (isAbsolute(pattern)) {
      // The executable at an absolute binaries.path.
      if (await isFile(pattern)) return true;
      continue;
    }
    const slash = pattern.indexOf("/");
    const head = slash < 0 ? pattern : pattern.slice(0, slash);
    const rest = slash < 0 ? "" : pattern.slice(slash + 1);
    if (!matchesGlob(name, head)) continue;
    if (rest === "") return true;
    if (!GLOB_CHARS.test(rest)) {
      if (await isFile(join(workersDir, name, rest))) return true;
      continue;
    }
    files ??= await listFiles(join(workersDir, name), 8);
    if (files.some((file) => matchesGlob(file, rest))) return true;
  }
  return false;
}

/** Files under `dir` as `/`-separated relative paths, `depth` folders deep at most. */
async function listFiles(dir: string, depth: number): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string, left: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(join(dir, sub)));
    } catch {
      return;
    }
    for (const entry of entries) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory) {
        if (left > 0 && !SKIP_DIRS.has(entry.name)) await walk(rel, left - 1);
      } else out.push(rel);
    }
  };
  await walk("", depth);
  return out;
}

async function statOrUndefined(
  path: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isFile ?? false;
}

async function isDir(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isDirectory ?? false;
}

function isExecutable(info: Deno.FileInfo): boolean {
  // No mode on Windows: any file counts.
  return info.mode === null || (info.mode & 0o111) !== 0;
}
