/**
 * The reverse proxy in front of the workers (SPEC §7): routes each request by
 * longest prefix to a healthy worker instance, streams bodies both ways,
 * drops hop-by-hop headers, sets forwarding headers, maps failures to
 * 404/502/503/504 and proxies WebSocket upgrades.
 *
 * @example
 * ```ts
 * import { createProxy, errorResponse } from "./mod.ts";
 * const proxy = createProxy(table, { logger });
 * Deno.serve({ port: 8080 }, proxy);
 * ```
 *
 * @module
 */
export {
  createProxy,
  proxiedHeaders,
  proxiedRequestId,
  type ProxyHandler,
  type ProxyLimits,
  type ProxyOptions,
} from "./proxy.ts";
export { errorResponse, type ErrorResponseInit } from "./_errors.ts";
export { HOP_BY_HOP } from "./_headers.ts";
