import type { DevHooks } from "../dev_contract.ts";
import type { Logger } from "../log/mod.ts";
import type { TqServer } from "./server.ts";

/** Options for {@linkcode TqServer.start}. */
export interface ServerOptions {
  /** Project root (absolute or cwd-relative). */
  root: string;
  /** `--config FILE`. Default `config/server.yaml` under the root. */
  configFile?: string | undefined;
  /** `--mode`. Default: resolved from env and config. */
  mode?: string | undefined;
  /** `--port`, overriding `server.port`. */
  port?: number | undefined;
  /** Log warnings and errors only. Default false. */
  quiet?: boolean;
  /** Logger; default: stdout plus `server.log_file` (and worker `log_file`s). */
  logger?: Logger;
  /** The clock of log file names and access log lines. Default `() => new Date()`. */
  now?: () => Date;
  /** Folder of the admin dashboard. Default `{root}/server/public/admin`. */
  dashboardDir?: string;
  /** Extra hooks for dev mode (live reload), attached by the dev subsystem. */
  devHooks?: (server: TqServer) => DevHooks | undefined;
  /** True when this process was started by an upgrading predecessor. */
  successor?: boolean;
  /** Aborts the start (SIGTERM or SIGINT during startup): builds and starts are cancelled, {@linkcode StartCancelled} thrown. */
  signal?: AbortSignal;
}

/** Thrown by {@linkcode TqServer.start} when its signal aborted: nothing it spawned is left running. */
export class StartCancelled extends Error {
  constructor(reason: string) {
    super(`Start cancelled by ${reason}`);
    this.name = "StartCancelled";
  }
}
