import { dirname } from "node:path";
import type { Mode, WorkerSpec } from "../config/mod.ts";
import { runsFromSource } from "../runtime.ts";

/** This process's environment, with the running deno first on PATH when run from source. */
export function baseEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  // Bundled TypeScript workers start with `#!/usr/bin/env -S deno run`: make the
  // deno that runs this server the one they find, even when it is not on PATH.
  if (runsFromSource()) {
    env.PATH = `${dirname(Deno.execPath())}:${env.PATH ?? "/usr/bin:/bin"}`;
  }
  return env;
}

/** Options for {@linkcode workerEnv}. */
export interface WorkerEnvOptions {
  /** The environment every worker inherits. */
  base: Record<string, string>;
  /** Server mode, `TQ_MODE`. */
  mode: Mode;
  /** V8 heap limit in MiB; 0 = Deno's default. */
  memoryMb: number;
}

/**
 * The full environment of a worker process (SPEC §4): the inherited one, the
 * worker's `env` settings, then the contract's variables, which always win.
 */
export function workerEnv(
  spec: WorkerSpec,
  port: number,
  options: WorkerEnvOptions,
): Record<string, string> {
  const { base, mode, memoryMb } = options;
  return {
    ...base,
    // deno (bundle) and deno-compiled workers read their V8 flags from here.
    ...(memoryMb > 0
      ? { DENO_V8_FLAGS: `--max-old-space-size=${memoryMb}` }
      : {}),
    ...goEnv(spec),
    ...spec.settings.env,
    TQ_PORT: String(port),
    PORT: String(port),
    TQ_MODE: mode,
    TQ_WORKER_NAME: spec.name,
    TQ_WORKER_ROUTE: spec.route,
    TQ_WORKER_BASE: spec.dir,
    TQ_HEALTH_PATH: spec.settings.health_path,
  };
}

/**
 * `GOMAXPROCS` / `GOMEMLIMIT` from `go_max_procs` / `go_mem_limit`, for Go
 * workers and prebuilt executables (which may be Go programs); a TypeScript
 * worker gets neither (discovery warned about it).
 */
function goEnv(spec: WorkerSpec): Record<string, string> {
  if (spec.kind === "typescript") return {};
  const { go_max_procs: procs, go_mem_limit: limit } = spec.settings;
  return {
    ...(procs > 0 ? { GOMAXPROCS: String(procs) } : {}),
    ...(limit ? { GOMEMLIMIT: limit } : {}),
  };
}

/** A spawn or health failure as one line for the log and `last_error`. */
export function errorMessage(err: unknown): string {
  if (err instanceof Deno.errors.PermissionDenied) {
    return "Binary is not executable";
  }
  if (err instanceof Deno.errors.NotFound) return "Binary not found";
  if (err instanceof Error) {
    if (/exec format|os error 8/i.test(err.message)) {
      return "Binary is not a valid executable (exec format error)";
    }
    return err.message;
  }
  return String(err);
}

/** True when `path` is an existing file. */
export async function fileExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
