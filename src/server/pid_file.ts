import { dirname, resolve } from "node:path";
import type { Logger } from "../log/mod.ts";
import { describeProcess, processInfo } from "./_port_owner.ts";

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

  /**
   * Fails when the file names another tqserver that still runs: a second
   * server on the same `server.pid_file` (another `--config`, other ports)
   * would take the file over and remove it when it stops, and
   * `kill -HUP "$(cat …)"` would no longer reach the first. A file that names
   * a process that is gone, or is no tqserver (a reused pid), is stale.
   *
   * @throws {Error} Naming the running server's pid and ports.
   */
  assertNotRunning(): void {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.path);
    } catch {
      return;
    }
    const pid = Number(text.trim());
    if (!Number.isInteger(pid) || pid <= 0 || pid === Deno.pid) return;
    const info = processInfo(pid);
    if (!info?.tqserver) return;
    throw new Error(
      `Another ${
        describeProcess(info)
      } runs with the PID file "${this.path}" (server.pid_file): stop it first ("kill ${pid}"), or give this server its own server.pid_file`,
    );
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
