/**
 * The configuration of tqserver: `config/server.yaml` and
 * `config/deployment.yaml` read and validated with every default filled in
 * ({@linkcode loadConfig}; the defaults in `defaults.ts`), the deployment
 * mode ({@linkcode resolveMode}), the running config and its subscribers
 * ({@linkcode ConfigStore}), the settings a mode cannot enforce
 * ({@linkcode unenforcedSettings}) and the worker folders with their routes
 * and settings ({@linkcode discoverWorkers}).
 *
 * @example
 * ```ts
 * import { discoverWorkers, loadConfig, resolveMode } from "./mod.ts";
 *
 * const root = Deno.cwd();
 * const { config, warnings } = await loadConfig({ root });
 * const mode = resolveMode({ env: Deno.env.get("DEPLOYMENT_MODE"), config });
 * const workers = await discoverWorkers(root, config);
 * ```
 *
 * @module
 */

export * from "./types.ts";
export * from "./defaults.ts";
export * from "./load.ts";
export * from "./discover.ts";
export * from "./store.ts";
export * from "./unenforced.ts";
