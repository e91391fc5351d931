// Folder-private: what the TypeScript and Go builders share about running
// builds — one at a time per worker, several workers at once, one progress
// line each, and the bin/.gitignore they leave beside what they build.
import { join } from "node:path";
import type { Logger } from "../log/mod.ts";
import type { BuildResult } from "./target.ts";

/** Runs tasks of the same key one after another; tasks of other keys are not held up. */
export class PerKeyQueue {
  #tails = new Map<string, Promise<unknown>>();

  /** Runs `task` once every earlier task of `key` has settled. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const result = before.then(task);
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}

/** Options for {@linkcode inLanes}. */
export interface InLanesOptions {
  /** How many tasks run at once (at least one). */
  lanes: number;
}

/** Calls `task` on every item, at most `lanes` at a time; results keep the items' order. */
export async function inLanes<T, R>(
  items: readonly T[],
  task: (item: T) => Promise<R>,
  options: InLanesOptions,
): Promise<R[]> {
  const { lanes } = options;
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(lanes, items.length)) }, lane),
  );
  return results;
}

/** Builds done so far out of `total`, shared by the builders of one start. */
export interface BuildProgress {
  done: number;
  total: number;
}

/** Options for {@linkcode logBuildResult}. */
export interface LogBuildResultOptions {
  /** The logger. */
  log: Logger;
  /** Builds done so far; counted up by one. */
  progress: BuildProgress;
  /** What was built (`esbuild`, `compile`, `go`), logged with a built result. */
  format: string;
}

/**
 * Logs a build as its progress line, `[2/5] api_users 180 ms` (counting it
 * as done), and a failure with its file and line.
 */
export function logBuildResult(
  result: BuildResult,
  options: LogBuildResultOptions,
): void {
  const { log, progress, format } = options;
  const line = `[${++progress
    .done}/${progress.total}] ${result.name} ${result.ms} ms`;
  const fields = { worker: result.name, ms: result.ms };
  // The message is the progress line itself: `[2/5] api_users 180 ms`.
  if (result.status === "built") {
    log.info(line, { ...fields, status: "built", format });
  } else if (result.status === "fresh") {
    log.info(line, { ...fields, status: "up-to-date" });
  } else {
    log.info(line, { ...fields, status: "failed" });
    const e = result.error;
    log.error("worker build failed", {
      ...fields,
      file: e?.file,
      line: e?.line,
      column: e?.column,
      error: e?.message,
    });
  }
}

/** What tqserver writes into a bin/ folder it builds into. */
export const BIN_GITIGNORE =
  "# Written by tqserver: this bin/ holds build output only.\n*\n";

/**
 * Writes `bin/.gitignore` (ignore everything) into the bin/ folder of a worker
 * that tqserver builds, unless one exists. A prebuilt worker's bin/ never gets
 * one, so its own executable stays tracked.
 */
export async function ignoreBuildOutput(binDir: string): Promise<void> {
  try {
    await Deno.writeTextFile(join(binDir, ".gitignore"), BIN_GITIGNORE, {
      createNew: true,
    });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
}
