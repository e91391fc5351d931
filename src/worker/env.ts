import { basename } from "node:path";

/** The settings tqserver hands a worker through its environment (SPEC §4). */
export interface WorkerEnv {
  /** Loopback port to listen on: `TQ_PORT`, else `PORT`, else 8000. */
  port: number;
  /** `TQ_MODE`: `"dev"` (default) or `"prod"`. */
  mode: "dev" | "prod";
  /** `TQ_WORKER_NAME`; default: the name of the base folder. */
  name: string;
  /** `TQ_WORKER_ROUTE`, without a trailing slash; default `"/"`. */
  route: string;
  /** `TQ_WORKER_BASE`, the worker folder holding `public/` and `private/`; default: the working directory. */
  base: string;
  /** `TQ_HEALTH_PATH`; default `"/health"`. */
  healthPath: string;
}

const DEFAULT_PORT = 8000;

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw new RangeError(
      `Port must be an integer from 1 to 65535, got "${text}"`,
    );
  }
  return port;
}

function normaliseRoute(route: string): string {
  if (!route.startsWith("/")) {
    throw new TypeError(`Worker route must start with "/", got "${route}"`);
  }
  return route.length > 1 ? route.replace(/\/+$/, "") || "/" : route;
}

/**
 * Reads the worker's settings from its environment. Run standalone (no
 * `TQ_*` variables) it listens on port 8000 at route `/` with the working
 * directory as its base, so `deno run -A src/main.ts` works from the worker folder.
 *
 * @throws {RangeError} When the port is not an integer from 1 to 65535.
 * @throws {TypeError} When the route or health path does not start with `/`, or the mode is unknown.
 *
 * @example
 * ```ts
 * const { name, mode, route } = workerEnv();
 * ```
 */
export function workerEnv(): WorkerEnv {
  const get = (key: string) => Deno.env.get(key) || undefined;
  const portText = get("TQ_PORT") ?? get("PORT");
  const mode = get("TQ_MODE") ?? "dev";
  if (mode !== "dev" && mode !== "prod") {
    throw new TypeError(`Mode must be "dev" or "prod", got "${mode}"`);
  }
  const base = workerBase();
  const healthPath = get("TQ_HEALTH_PATH") ?? "/health";
  if (!healthPath.startsWith("/")) {
    throw new TypeError(`Health path must start with "/", got "${healthPath}"`);
  }
  return {
    port: portText === undefined ? DEFAULT_PORT : parsePort(portText),
    mode,
    name: get("TQ_WORKER_NAME") ?? basename(base),
    route: normaliseRoute(get("TQ_WORKER_ROUTE") ?? "/"),
    base,
    healthPath,
  };
}

/** The worker folder: `TQ_WORKER_BASE`, else the working directory. */
export function workerBase(): string {
  return Deno.env.get("TQ_WORKER_BASE") || Deno.cwd();
}
