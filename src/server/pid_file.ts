import { dirname, resolve } from "node:path";
import type { Logger } from "../log/mod.ts";

/**
 * The server's PID file (`server.pid_file`, like nginx's `pid`): written
 * atomically, rewritten by a self-upgrade successor, removed on a clean stop
 * only while it still names this process.
 */
export class PidFile {
  readonly path: string;
  #log: Logger;
  #written = false;

  /** `file` is root-relative or absolute. */
  constructor(root: string, file: string, log: Logger) {
    this.path = resolve(root, file);
    this.#log = log;
  }

  /** Writes this process's pid. A failure is logged, not fatal: signals still reach the server by its pid. */
  async write(): Promise<void> {
    const tmp = `${this.path}.${Deno.pid}.tmp`;
    try {
      await Deno.mkdir(dirname(this.path), { recursive: true });
      await Deno.writeTextFile(tmp, `${Deno.pid}\n`);
      await Deno.rename(tmp, this.path);
      this.#written = true;
    } catch (err) {
      this.#log.warn("pid file not written", {
        path: this.path,
        key: "server.pid_file",
        error: err,
      });
      await Deno.remove(tmp).catch(() => {});
    }
  }

  /** Removes the file if it still holds this process's pid (a successor may have taken it over). */
  remove(): void {
    if (!this.#written) return;
    try {
      if (Deno.readTextFileSync(this.path).trim() !== String(Deno.pid)) return;
      Deno.removeSync(this.path);
    } catch {
      // Gone already.
    }
  }
}
