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

/** A host as a browser reaches it: a wildcard address is this machine (127.0.0.1), IPv6 in brackets. */
export function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}
