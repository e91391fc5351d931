import { isAbsolute, join, normalize, sep } from "node:path";
import { parse } from "yaml";
import { workerBase } from "./env.ts";

/** Options for {@linkcode readPrivate} and {@linkcode readPrivateYaml}. */
export interface PrivateOptions {
  /** The worker folder whose `private/` is read. Default: `TQ_WORKER_BASE`, else the working directory. */
  base?: string;
}

interface CachedText {
  mtime: number;
  size: number;
  text: string;
}

const texts = new Map<string, CachedText>();
const parsed = new Map<string, { text: string; value: unknown }>();

/** Forgets every cached `private/` file, so the next read goes to disk (used on the reload signal). */
export function clearPrivateCache(): void {
  texts.clear();
  parsed.clear();
}

/** Checks the shape of a path relative to `private/` and returns it normalised. */
function checkRelative(relPath: string): string {
  if (typeof relPath !== "string" || relPath === "") {
    throw new TypeError("Private path must be a non-empty string");
  }
  if (relPath.includes("\0") || relPath.includes("\\")) {
    throw new TypeError(
      `Private path must not contain NUL or "\\", got "${relPath}"`,
    );
  }
  if (isAbsolute(relPath) || /^[a-zA-Z]:/.test(relPath)) {
    throw new TypeError(`Private path must be relative, got "${relPath}"`);
  }
  const norm = normalize(relPath);
  if (norm === ".." || norm.startsWith("../")) {
    throw new TypeError(
      `Private path must stay inside private/, got "${relPath}"`,
    );
  }
  return norm;
}

/**
 * Resolves `relPath` inside `{base}/private`, following symlinks, and returns
 * the real path.
 *
 * @throws {TypeError} When the path is absolute, climbs out, or resolves outside `private/`.
 * @throws {Deno.errors.NotFound} When the file or `private/` does not exist.
 */
async function resolvePrivate(relPath: string, base: string): Promise<string> {
  const norm = checkRelative(relPath);
  // Both sides are real paths, so a symlinked private/ (a deploy) still works
  // while a symlink inside it that points out is caught.
  const root = await Deno.realPath(join(base, "private"));
  const real = await Deno.realPath(join(root, norm));
  if (real !== root && !real.startsWith(root + sep)) {
    throw new TypeError(
      `Private path resolves outside private/, got "${relPath}"`,
    );
  }
  return real;
}

/**
 * Reads a text file under the worker's `private/` folder. The text is cached
 * and read again only when the file's mtime or size changes, or after
 * {@linkcode clearPrivateCache} (the SDK calls it on the reload signal).
 *
 * @param relPath Path relative to `private/`, such as `"config/app.yaml"`.
 * @throws {TypeError} When the path is absolute, contains `..` that climbs out, or a symlink leads outside `private/`.
 * @throws {Deno.errors.NotFound} When the file does not exist.
 *
 * @example
 * ```ts
 * const motd = await readPrivate("config/motd.txt");
 * ```
 */
export async function readPrivate(
  relPath: string,
  options: PrivateOptions = {},
): Promise<string> {
  const { base = workerBase() } = options;
  const real = await resolvePrivate(relPath, base);
  const info = await Deno.stat(real);
  if (!info.isFile) {
    throw new TypeError(`Private path is not a file, got "${relPath}"`);
  }
  const mtime = info.mtime?.getTime() ?? 0;
  const cached = texts.get(real);
  if (cached && cached.mtime === mtime && cached.size === info.size) {
    return cached.text;
  }
  const text = await Deno.readTextFile(real);
  texts.set(real, { mtime, size: info.size, text });
  return text;
}

/**
 * Reads and parses a YAML file under `private/`, cached like
 * {@linkcode readPrivate}. The value is shared between calls: treat it as read-only.
 *
 * @throws {TypeError} As {@linkcode readPrivate}.
 * @throws {SyntaxError} When the file is not valid YAML; the message names the file.
 *
 * @example
 * ```ts
 * const rules = await readPrivateYaml<{ fields: Record<string, unknown> }>("config/validation.yaml");
 * ```
 */
export async function readPrivateYaml<T = unknown>(
  relPath: string,
  options: PrivateOptions = {},
): Promise<T> {
  const { base = workerBase() } = options;
  const text = await readPrivate(relPath, { base });
  const key = join(base, "private", relPath);
  const hit = parsed.get(key);
  if (hit && hit.text === text) return hit.value as T;
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    throw new SyntaxError(
      `Private file "${relPath}" is not valid YAML: ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  }
  parsed.set(key, { text, value });
  return value as T;
}
