// Helpers shared by the build tests: a fixture project in a temporary folder,
// running built binaries with a deadline, and a logger that records.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LogFields, Logger } from "../log/mod.ts";
import type { BuildTarget } from "./builder.ts";

const FIXTURE = fileURLToPath(
  new URL("../../tests/testdata/build", import.meta.url),
);

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (entry.isDirectory) await copyDir(src, dst);
    else if (entry.isFile) await Deno.copyFile(src, dst);
  }
}

/**
 * Copies tests/testdata/build to a new temporary folder and gives it a
 * deno.json with `unstable: ["net"]`, like the project's.
 */
export async function fixtureProject(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "tq-build-" });
  await copyDir(FIXTURE, root);
  await Deno.writeTextFile(
    join(root, "deno.json"),
    JSON.stringify({ unstable: ["net"] }, null, 2) + "\n",
  );
  return root;
}

/** The build target of fixture worker `name` under `root`. */
export function targetOf(root: string, name: string): BuildTarget {
  const dir = join(root, "workers", name);
  return {
    name,
    dir,
    entry: join(dir, "src", "main.ts"),
    binPath: join(dir, "bin", name),
  };
}

/** Output of a finished process. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` to completion within `timeoutMs`, stdin closed. */
export async function run(
  command: string,
  args: string[] = [],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } =
    {},
): Promise<Ran> {
  const { cwd, env, timeoutMs = 20_000 } = options;
  const out = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
    ...(cwd ? { cwd } : {}),
    ...(env ? { env } : {}),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** Names of the leftover temporary files in a folder. */
export async function tempFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.includes(".tmp-")) names.push(entry.name);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return names;
}

/** One recorded log call. */
export interface LogRecord {
  level: string;
  msg: string;
  fields: LogFields;
}

/** A logger that keeps every call in `records`. */
export function recordingLogger(): Logger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  const add = (level: string) => (msg: string, fields: LogFields = {}) => {
    records.push({ level, msg, fields });
  };
  return {
    records,
    debug: add("debug"),
    info: add("info"),
    warn: add("warn"),
    error: add("error"),
    line: (prefix, text) => add("line")(text, { prefix }),
  };
}
