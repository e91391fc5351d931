import { join, resolve } from "node:path";
import { withModeDefaults } from "./defaults.ts";
import {
  loadConfig,
  type LoadConfigOptions,
  type LoadedConfig,
  resolveMode,
} from "./load.ts";
import type { Config, Mode } from "./types.ts";

/** What a swap changed, as told to every subscriber of a {@linkcode ConfigStore}. */
export interface ConfigChange {
  /** The config in force before the swap. */
  readonly previous: Config;
  /** The config in force now. */
  readonly current: Config;
  /**
   * Dotted keys whose value differs, sorted, e.g.
   * `server.static.cache_max_age_seconds`; a list or a map of names
   * (`workers.paths`, `workers.routes`, `env`) counts as one value.
   */
  readonly keys: readonly string[];
  /** True when `key` or a key under it changed: `touches("server.static")`. */
  touches(key: string): boolean;
}

/** Called with every swap; see {@linkcode ConfigStore.subscribe}. */
export type ConfigSubscriber = (change: ConfigChange) => void;

/** Options of {@linkcode ConfigStore}. */
export interface ConfigStoreOptions {
  /** The mode the server runs in; it picks the mode-dependent defaults. */
  mode: Mode;
  /** Project root (absolute). */
  root: string;
  /** `--config FILE`. Default `config/server.yaml` under the root. */
  configFile?: string | undefined;
  /** Environment lookup for `${VAR}` expansion. Default `Deno.env.get`. */
  env?: (name: string) => string | undefined;
  /** Reads and validates the files. Default {@linkcode loadConfig} (tests pass another). */
  load?: (options: LoadConfigOptions) => Promise<LoadedConfig>;
}

/** Options of {@linkcode ConfigStore.open}: the store's, with the mode still to be resolved. */
export interface OpenConfigStoreOptions
  extends Omit<ConfigStoreOptions, "mode"> {
  /** `--mode`. Default: not given. */
  modeFlag?: string | undefined;
  /** The `DEPLOYMENT_MODE` environment value. Default: not set. */
  modeEnv?: string | undefined;
}

/**
 * The one owner of the running config (SPEC §9): it reads and validates a
 * candidate, resolves its mode-dependent defaults, swaps it in and tells its
 * subscribers (supervisor, listeners with the proxy and static files) what
 * changed. A candidate that fails validation never replaces the config in force.
 *
 * @example
 * ```ts
 * const store = new ConfigStore(loaded.config, { mode: "prod", root });
 * store.subscribe(({ current, touches }) => {
 *   if (touches("server.static")) console.log(current.server.static);
 * });
 * const candidate = await store.read(); // throws ConfigError: nothing changes
 * store.swap(candidate.config);
 * ```
 */
export class ConfigStore {
  readonly mode: Mode;
  #current: Config;
  #subscribers = new Set<ConfigSubscriber>();
  #options: ConfigStoreOptions;

  /**
   * Reads the config files, resolves the mode ({@linkcode resolveMode}) and
   * holds the result as the running config.
   *
   * @returns The store and the config as read (its files and warnings).
   * @throws {ConfigError} When a file is invalid.
   * @throws {RangeError} When the mode flag or variable is neither dev nor prod.
   */
  static async open(
    options: OpenConfigStoreOptions,
  ): Promise<{ store: ConfigStore; loaded: LoadedConfig }> {
    const { modeFlag, modeEnv, ...rest } = options;
    const loaded = await readFiles(rest);
    const mode = resolveMode({
      flag: modeFlag,
      env: modeEnv,
      config: loaded.config,
    });
    return { store: new ConfigStore(loaded.config, { ...rest, mode }), loaded };
  }

  /** Holds `initial` (its mode defaults filled in) as the running config. */
  constructor(initial: Config, options: ConfigStoreOptions) {
    this.mode = options.mode;
    this.#options = options;
    this.#current = withModeDefaults(initial, options.mode);
  }

  /** The config in force. */
  get current(): Config {
    return this.#current;
  }

  /** The config files' absolute paths, `server.yaml` then `deployment.yaml` (existing or not). */
  paths(): string[] {
    const { root, configFile } = this.#options;
    const server = configFile
      ? resolve(root, configFile)
      : join(root, "config", "server.yaml");
    return [server, join(server, "..", "deployment.yaml")];
  }

  /**
   * Calls `subscriber` with every later swap, in the order of subscription.
   *
   * @returns A function that ends the subscription.
   */
  subscribe(subscriber: ConfigSubscriber): () => void {
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  /**
   * Reads the config files into a candidate: validated, every default filled
   * in, the mode's too. The config in force is not touched.
   *
   * @throws {ConfigError} When a file is invalid; the message names file, line and key.
   */
  async read(): Promise<LoadedConfig> {
    const loaded = await readFiles(this.#options);
    withModeDefaults(loaded.config, this.mode);
    return loaded;
  }

  /**
   * Makes `next` the config in force and tells every subscriber what changed.
   * Every subscriber is told even when one throws; the first error is then
   * rethrown (the swap has happened).
   *
   * @returns What changed.
   */
  swap(next: Config): ConfigChange {
    const previous = this.#current;
    this.#current = withModeDefaults(next, this.mode);
    const change = describeChange(previous, this.#current);
    const errors: unknown[] = [];
    for (const subscriber of [...this.#subscribers]) {
      try {
        subscriber(change);
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      throw new AggregateError(errors, "Config subscribers failed");
    }
    return change;
  }

  /**
   * Reads a candidate, lets `accept` check it further (the routes of the
   * workers it finds, say) and swaps it in. When reading or `accept` throws,
   * the config in force stays and the error is rethrown.
   *
   * @returns The candidate as read, what `accept` returned and what changed.
   * @throws {ConfigError} When a file is invalid.
   */
  async reload<T = void>(
    accept?: (candidate: LoadedConfig) => T | Promise<T>,
  ): Promise<{ loaded: LoadedConfig; accepted: T; change: ConfigChange }> {
    const loaded = await this.read();
    const accepted = await accept?.(loaded) as T;
    const change = this.swap(loaded.config);
    return { loaded, accepted, change };
  }
}

function readFiles(
  options: Omit<ConfigStoreOptions, "mode">,
): Promise<LoadedConfig> {
  const { root, configFile, env, load = loadConfig } = options;
  return load({
    root,
    ...(configFile ? { configFile } : {}),
    ...(env ? { env } : {}),
  });
}

/** Maps whose keys are names (of paths, routes, variables), compared whole. */
const WHOLE = new Set([
  "workers.paths",
  "workers.routes",
  "workers.default.env",
  "deployment.targets",
]);

/** The differences between two configs, as a {@linkcode ConfigChange}. */
export function describeChange(
  previous: Config,
  current: Config,
): ConfigChange {
  const keys: string[] = [];
  diff(previous, current, "", keys);
  keys.sort();
  return {
    previous,
    current,
    keys,
    touches: (key) => keys.some((k) => k === key || k.startsWith(`${key}.`)),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function diff(a: unknown, b: unknown, at: string, out: string[]): void {
  if (isRecord(a) && isRecord(b) && !WHOLE.has(at)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      diff(a[key], b[key], at ? `${at}.${key}` : key, out);
    }
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(at);
}
