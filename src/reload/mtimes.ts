import { join } from "node:path";
import type { WorkerMtimes } from "../supervisor/mod.ts";

/** mtime of a file in epoch ms, or 0 when it does not exist. */
export async function fileMtime(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}

/**
 * Newest mtime of a folder and everything under it (one stat per entry), or 0
 * when it does not exist. Symlinks are not followed.
 */
export async function newestMtime(dir: string): Promise<number> {
  let newest: number;
  try {
    const info = await Deno.lstat(dir);
    newest = info.mtime?.getTime() ?? 0;
    if (!info.isDirectory) return newest;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
  const subdirs: Promise<number>[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) subdirs.push(newestMtime(path));
    else subdirs.push(fileMtime(path).catch(() => 0));
  }
  for (const m of await Promise.all(subdirs)) if (m > newest) newest = m;
  return newest;
}

/** Stats a worker's binary, `public/` and `private/`. */
export async function workerMtimes(
  dir: string,
  binPath: string,
): Promise<WorkerMtimes> {
  const [binary, pub, priv] = await Promise.all([
    fileMtime(binPath),
    newestMtime(join(dir, "public")),
    newestMtime(join(dir, "private")),
  ]);
  return { binary, public: pub, private: priv };
}
