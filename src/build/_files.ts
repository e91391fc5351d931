import { dirname, join } from "node:path";
import { unstableFlags } from "./_launcher.ts";

/** The deno config that applies to an entry point. */
export interface Project {
  /** deno.json(c). */
  config: string;
  /** deno.lock beside it (it may not exist). */
  lock: string;
  /** `--unstable-*` flags from its `unstable` list. */
  unstable: string[];
}

const CONFIG_NAMES = ["deno.json", "deno.jsonc"];
/** Enough of a binary's head to hold the launcher lines. */
const HEAD_BYTES = 1024;

/** The modification time of `path` in ms, 0 when it does not exist. */
export async function mtimeMs(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

/** The first bytes of a file as text (the launcher lines of a bundle). */
export async function readHead(path: string): Promise<string> {
  using file = await Deno.open(path);
  const buf = new Uint8Array(HEAD_BYTES);
  const n = await file.read(buf);
  return new TextDecoder().decode(buf.subarray(0, n ?? 0));
}

/** Removes a file that may not exist. */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // Never written, or already gone.
  }
}

/**
 * The deno config deno uses for `entry`: `configPath` when given, else the
 * nearest deno.json(c) in the entry's folder or above. An unreadable config
 * gives no unstable flags; deno itself will report it when it builds.
 */
export async function findProject(
  entry: string,
  configPath: string | undefined,
): Promise<Project | undefined> {
  let config = configPath;
  for (let dir = dirname(entry); !config;) {
    for (const name of CONFIG_NAMES) {
      if ((await mtimeMs(join(dir, name))) > 0) {
        config = join(dir, name);
        break;
      }
    }
    if (dirname(dir) === dir) break;
    dir = dirname(dir);
  }
  if (!config) return undefined;
  let text = "";
  try {
    text = await Deno.readTextFile(config);
  } catch {
    // Reported by deno on the build itself.
  }
  return {
    config,
    lock: join(dirname(config), "deno.lock"),
    unstable: unstableFlags(text),
  };
}
