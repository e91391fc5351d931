import type { WorkerSpec } from "./discover.ts";
import { whereSet } from "./load.ts";
import type { Config, Mode } from "./types.ts";

/** An accepted key that tqserver cannot enforce (fully) in the mode in force. */
export interface UnenforcedSetting {
  /** The dotted key, e.g. `deployment.prod.file_watcher.enabled`. */
  key: string;
  /** Why it is not enforced. */
  why: string;
  /** `file:line` where it was set, for keys warned about only when a file sets them. */
  where?: string;
}

/** Keys that Deno.serve gives no way to enforce (fully): warned about when a file sets them. */
const SERVE_LIMITS: Readonly<Record<string, string>> = {
  "server.idle_timeout_seconds":
    "Deno.serve gives no way to close idle keep-alive client connections",
  "server.read_timeout_seconds":
    "only a stalled request body is answered 408 (its socket then stays open until the client closes it): Deno.serve gives no way to time out a client before its request head is complete",
};

/**
 * The one pass over the settings tqserver accepts but cannot honour in
 * `mode` (SPEC §9: a key is honoured or warned about, never ignored). The
 * server logs each as the startup warning `setting not enforced`; the
 * defaults never appear.
 *
 * @example
 * ```ts
 * unenforcedSettings(defaultConfig(), "prod"); // []
 * ```
 */
export function unenforcedSettings(
  config: Config,
  mode: Mode,
): UnenforcedSetting[] {
  const found: UnenforcedSetting[] = [];
  const settings = config.deployment[mode];
  const at = `deployment.${mode}`;
  const add = (key: string, why: string) =>
    found.push({ key: `${at}.${key}`, why });
  // Dev bundles with esbuild, which does not type-check.
  if (mode === "dev" && settings.build.check) {
    add(
      "build.check",
      "dev bundles with esbuild, which does not type-check: type errors are reported in the background after each build and never block a reload",
    );
  }
  if (settings.build.format === "bundle" && settings.build.target) {
    add(
      "build.target",
      `it is a deno compile target and ${at}.build.format is "bundle"`,
    );
  }
  if (mode === "prod" && settings.file_watcher.enabled) {
    add(
      "file_watcher.enabled",
      "prod watches no files: SIGHUP or POST /api/reload applies changes",
    );
  }
  if (mode === "prod" && settings.resources.watch_resource_changes) {
    add(
      "resources.watch_resource_changes",
      "prod watches no files: a SIGHUP compares public/ and private/ mtimes",
    );
  }
  for (const [key, why] of Object.entries(SERVE_LIMITS)) {
    const where = whereSet(config, key);
    if (where) found.push({ key, where, why });
  }
  return found;
}

/** Options of {@linkcode unenforcedForWorkers}. */
export interface UnenforcedForWorkersOptions {
  /** The config the workers were discovered under. */
  config: Config;
  /** The mode in force. */
  mode: Mode;
}

/**
 * The per-worker side of {@linkcode unenforcedSettings}: a setting that has
 * no effect for some of the discovered workers, one sentence each (logged as
 * `worker warning` with the discovery's other warnings).
 *
 * @example
 * ```ts
 * unenforcedForWorkers(specs, { config, mode: "prod" }); // [] without worker_max_memory_mb
 * ```
 */
export function unenforcedForWorkers(
  specs: readonly WorkerSpec[],
  options: UnenforcedForWorkersOptions,
): string[] {
  const { config, mode } = options;
  const found: string[] = [];
  // The limit is DENO_V8_FLAGS, which only a Deno program reads.
  const key = `deployment.${mode}.resources.worker_max_memory_mb`;
  if (config.deployment[mode].resources.worker_max_memory_mb <= 0) return found;
  for (const spec of specs) {
    if (spec.kind === "go") {
      found.push(
        `"${key}" has no effect for worker "${spec.name}": it is a Go worker (set workers.default.go_mem_limit)`,
      );
    } else if (spec.kind === "binary") {
      found.push(
        `"${key}" reaches worker "${spec.name}" as DENO_V8_FLAGS, which only a Deno program reads: a prebuilt worker in another language is not limited`,
      );
    }
  }
  return found;
}

/**
 * Keys a reload does not apply: they shape the listener's routing, and take
 * effect at the next server start.
 */
const RESTART_ONLY: readonly (readonly [string, (c: Config) => unknown])[] = [
  ["server.static.enabled", (c) => c.server.static.enabled],
  ["server.static.url_prefix", (c) => c.server.static.url_prefix],
];

/**
 * The keys whose change from `running` to `next` a reload cannot apply (the
 * server warns `config change takes effect at the next server start`).
 *
 * @example
 * ```ts
 * restartOnlyChanges(running, next); // ["server.static.url_prefix"]
 * ```
 */
export function restartOnlyChanges(running: Config, next: Config): string[] {
  const changed: string[] = [];
  for (const [key, get] of RESTART_ONLY) {
    if (get(running) !== get(next)) changed.push(key);
  }
  return changed;
}
