import { dirname } from "node:path";

const encoder = new TextEncoder();

/** Options for {@linkcode createFileSink}. */
export interface FileSinkOptions {
  /** Also write each line to stderr. Default true. */
  stderr?: boolean;
  /** The clock that picks the `{date}`. Default `() => new Date()`. */
  now?: () => Date;
}

/**
 * Returns a line writer that appends to `pathTemplate`, with `{date}` replaced
 * by the current `YYYY-MM-DD` (a new file each day).
 *
 * @example
 * ```ts
 * const write = createFileSink("/srv/app/logs/tqserver_{date}.log");
 * const log = createLogger({ write });
 * ```
 */
export function createFileSink(
  pathTemplate: string,
  options: FileSinkOptions = {},
): (line: string) => void {
  const { stderr = true, now = () => new Date() } = options;
  let currentPath = "";
  let file: Deno.FsFile | undefined;
  return (line) => {
    const bytes = encoder.encode(line + "\n");
    if (stderr) Deno.stderr.writeSync(bytes);
    const path = pathTemplate.replaceAll(
      "{date}",
      now().toISOString().slice(0, 10),
    );
    if (path !== currentPath) {
      file?.close();
      Deno.mkdirSync(dirname(path), { recursive: true });
      file = Deno.openSync(path, { append: true, create: true });
      currentPath = path;
    }
    let written = 0;
    while (written < bytes.length) {
      written += file!.writeSync(bytes.subarray(written));
    }
  };
}
