import { join } from "node:path";
import type { Config, LoadedConfig, WorkerSpec } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Supervisor, WorkerMtimes } from "../supervisor/mod.ts";
import { runsFromSource } from "../runtime.ts";
import { fileMtime, newestMtime, workerMtimes } from "./mtimes.ts";

/** What the scan reads from the server. */
export interface ScanSource {
  readonly log: Logger;
  readonly supervisor: Supervisor;
  readonly config: Config;
  configPaths(): string[];
  loadConfig(): Promise<LoadedConfig>;
  discover(config?: Config): Promise<WorkerSpec[]>;
}

/** What the check remembers between runs (worker mtimes live in the supervisor's records). */
export interface ReloadState {
  configMtimes: Map<string, number>;
  serverMtime: number;
}

/** What one scan saw. */
export interface ScanResult {
  /** Changed paths: worker binaries, `public/` and `private/` folders, config files, the server's code. */
  paths: string[];
  configPaths: string[];
  configMtimes: number[];
  /** The path that stands for the server's own code (its binary, or its main module). */
  serverPath: string;
  serverMtime: number;
  /** A changed config that validated (routes included). */
  candidate?: LoadedConfig;
  /** Why a changed config was rejected. */
  configError?: string;
  /** The workers on disk; undefined when discovery failed. */
  specs?: WorkerSpec[];
  /** Why discovery failed. */
  discoverError?: string;
  /** The mtimes of every worker on disk now. */
  mtimes: Map<string, WorkerMtimes>;
}

/** Options for {@linkcode scanChanges}. */
export interface ScanOptions {
  /** Report nothing as changed, only read the mtimes (at startup). Default false. */
  record?: boolean;
}

/** The file that stands for the server's own code: its binary when compiled, else its main module. */
export function serverPath(): string {
  if (!runsFromSource()) return Deno.execPath();
  return Deno.mainModule.startsWith("file://")
    ? new URL(Deno.mainModule).pathname
    : "";
}

/** mtime of the server's own code: the binary when compiled, else `main.ts` and `src/`. */
export async function serverMtime(): Promise<number> {
  const exec = Deno.execPath();
  if (!runsFromSource()) return await fileMtime(exec);
  const main = serverPath();
  if (!main) return 0;
  const [a, b] = await Promise.all([
    fileMtime(main),
    newestMtime(join(main, "..", "src")),
  ]);
  return Math.max(a, b);
}

/**
 * The SIGHUP scan (SPEC §6, prod): stats the config files, validates a
 * changed config (a bad one is logged and the old one kept), discovers the
 * workers, stats every worker's binary, `public/` and `private/` and the
 * server's own code, and names what is newer than recorded. Changes nothing.
 */
export async function scanChanges(
  host: ScanSource,
  state: ReloadState,
  options: ScanOptions = {},
): Promise<ScanResult> {
  const { record = false } = options;
  const { log, supervisor } = host;
  const configPaths = host.configPaths();
  const configMtimes = await Promise.all(configPaths.map(fileMtime));
  const scan: ScanResult = {
    paths: [],
    configPaths,
    configMtimes,
    serverPath: serverPath(),
    serverMtime: 0,
    mtimes: new Map(),
  };
  const changedConfig = record
    ? []
    : configPaths.filter((p, i) =>
      state.configMtimes.get(p) !== configMtimes[i]
    );
  if (changedConfig.length) {
    scan.paths.push(...changedConfig);
    try {
      // Validate everything, routes included, before anything is applied.
      const loaded = await host.loadConfig();
      scan.specs = await host.discover(loaded.config);
      scan.candidate = loaded;
    } catch (err) {
      scan.configError = err instanceof Error ? err.message : String(err);
      log.error("config rejected, keeping the old one", {
        error: scan.configError,
      });
    }
  }
  if (!scan.specs) {
    try {
      scan.specs = await host.discover(host.config);
    } catch (err) {
      scan.discoverError = err instanceof Error ? err.message : String(err);
      return scan;
    }
  }
  await Promise.all(scan.specs.map(async (spec) => {
    const now = await workerMtimes(spec.dir, spec.binPath);
    scan.mtimes.set(spec.name, now);
    const rec = supervisor.workers.get(spec.name)?.mtimes;
    if (record || !rec) return;
    if (now.binary !== rec.binary) scan.paths.push(spec.binPath);
    if (now.public !== rec.public) scan.paths.push(join(spec.dir, "public"));
    if (now.private !== rec.private) scan.paths.push(join(spec.dir, "private"));
  }));
  scan.serverMtime = await serverMtime();
  if (
    !record && state.serverMtime !== 0 && scan.serverMtime !== state.serverMtime
  ) {
    scan.paths.push(scan.serverPath);
  }
  return scan;
}
