// Folder-private: a file's identity (device, inode, size, mtime) and reading
// or opening a file only while it is the version that was checked.
import { sep } from "node:path";

/** The identity of a file's version: an rsync-style rename changes `ino`. */
export interface FileId {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

/** True for the errors a request can cause by naming a path: a 404, never a 500. */
export function isClientPathError(err: unknown): boolean {
  if (
    err instanceof Deno.errors.NotFound ||
    err instanceof Deno.errors.NotADirectory ||
    err instanceof Deno.errors.PermissionDenied ||
    err instanceof Deno.errors.FilesystemLoop ||
    err instanceof Deno.errors.IsADirectory
  ) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENAMETOOLONG" || code === "ELOOP" || code === "EACCES" ||
    code === "ENOENT" || code === "ENOTDIR" || code === "EPERM";
}

/** Runs `fn`, answering `null` for the errors {@linkcode isClientPathError} names. */
export async function orNull<T>(fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (isClientPathError(err)) return null;
    throw err;
  }
}

export function idOf(info: Deno.FileInfo): FileId {
  return {
    dev: info.dev,
    ino: info.ino ?? 0,
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
  };
}

/** True when both describe the same version of the same file. */
export function sameId(a: FileId, b: FileId): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size &&
    a.mtimeMs === b.mtimeMs;
}

/** The real path of `path` when it is `root` or inside it, else null (escapes, or missing). */
export async function realInside(
  root: string,
  path: string,
): Promise<string | null> {
  const real = await orNull(() => Deno.realPath(path));
  if (real === null) return null;
  return real === root || real.startsWith(root + sep) ? real : null;
}

/** Options for {@linkcode readChecked}. */
export interface ReadCheckedOptions {
  /** The version the path's `stat` found. */
  expected: FileId;
  /** Larger files are not read: the answer holds no bytes. */
  fileMaxBytes: number;
}

/**
 * Opens a regular file inside `root` and returns its identity and, when it is
 * small enough, its bytes. The handle's `fstat` must match the `stat` taken
 * when the path was checked: a file swapped in between (for a symlink out of
 * `public/`, say) is not read.
 */
export async function readChecked(
  realPath: string,
  options: ReadCheckedOptions,
): Promise<{ id: FileId; body: Uint8Array<ArrayBuffer> | undefined } | null> {
  const { expected, fileMaxBytes } = options;
  if (expected.size > fileMaxBytes) return { id: expected, body: undefined };
  const file = await orNull(() => Deno.open(realPath, { read: true }));
  if (file === null) return null;
  try {
    const info = await file.stat();
    const id = idOf(info);
    if (!info.isFile || !sameId(id, expected)) return null;
    const body = new Uint8Array(id.size);
    let filled = 0;
    while (filled < body.length) {
      const n = await file.read(body.subarray(filled));
      if (n === null) return null; // truncated while reading: not this version
      filled += n;
    }
    return { id, body };
  } finally {
    file.close();
  }
}

export function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (err) {
    if (isClientPathError(err)) return null;
    throw err;
  }
}

/** True when `info` is a regular file of version `id`. */
export function sameInfo(info: Deno.FileInfo | null, id: FileId): boolean {
  return info !== null && info.isFile && sameId(idOf(info), id);
}

/** Opens a file for streaming; null when it is no longer version `id`. */
export function openChecked(
  file: { realPath: string; id: FileId },
): Deno.FsFile | null {
  // Looked at before it is opened: a FIFO put in its place would block
  // openSync, and with it the whole server, until a writer came.
  if (!sameInfo(statOrNull(file.realPath), file.id)) return null;
  let handle: Deno.FsFile;
  try {
    handle = Deno.openSync(file.realPath, { read: true });
  } catch (err) {
    if (isClientPathError(err)) return null;
    throw err;
  }
  try {
    if (sameInfo(handle.statSync(), file.id)) return handle;
  } catch (err) {
    handle.close();
    throw err;
  }
  handle.close();
  return null;
}
