/**
 * What the server and the dev subsystem agree on, kept apart from both so
 * neither imports the other: the dev hooks a server calls, and the exit code
 * with which a dev server asks `deno task dev` for a restart.
 *
 * @module
 */
import type { BuildResult } from "./build/mod.ts";
import type { SpawnFn } from "./supervisor/mod.ts";

/** Exit code with which the dev server asks its runner for a restart (EX_TEMPFAIL). */
export const RESTART_EXIT_CODE = 75;

/** Env var telling the server that a runner restarts it. */
export const RUNNER_ENV = "TQ_DEV_RUNNER";

/** Dev-mode hooks: `/_tq/` endpoints and HTML response rewriting. */
export interface DevHooks {
  /** Answers a request under `/_tq/`. */
  handle(req: Request, pathname: string): Response | Promise<Response>;
  /**
   * An answer given instead of proxying: the building page of a new worker
   * still building or starting, or the error of a worker with no instance,
   * at once rather than after the proxy has waited for a healthy instance.
   */
  intercept?(pathname: string, req?: Request): Response | undefined;
  /** Rewrites a worker response (e.g. injects the live-reload script into HTML). */
  transform(res: Response, req: Request): Response;
  /** Reports builds the server ran itself (at startup), so browsers see their errors. */
  onBuild?(results: BuildResult[]): void;
  /** Starts worker processes (dev: may hand over a warm standby). Default: a plain spawn. */
  spawn?: SpawnFn;
  /** Stops what the hooks started (standby processes); called after the workers stopped. */
  close?(): Promise<void>;
}
