import type { Config, Mode } from "../config/mod.ts";

/** Longest wait for the admin listener's last answers once the workers stopped. */
export const ADMIN_CLOSE_MS = 1000;

/** Awaits `promise` for at most `ms`; true when it settled in time. */
export async function within(
  promise: Promise<unknown> | undefined,
  ms: number,
): Promise<boolean> {
  if (!promise) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    promise.then(() => true, () => true),
    new Promise<false>((resolve) =>
      timer = setTimeout(() => resolve(false), ms)
    ),
  ]);
  clearTimeout(timer);
  return settled;
}

/**
 * Fills in `server.host` when no config file set it: 127.0.0.1 in dev (like
 * Vite, so a dev server is not open to the network), 0.0.0.0 in prod (SPEC §9).
 */
export function withBindHost(config: Config, mode: Mode): Config {
  if (!config.server.host) {
    config.server.host = mode === "dev" ? "127.0.0.1" : "0.0.0.0";
  }
  return config;
}
