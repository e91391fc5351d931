/**
 * The reverse proxy in front of the workers (SPEC §7): routes each request by
 * longest prefix to a healthy worker instance, streams bodies both ways,
 * drops hop-by-hop headers, sets forwarding headers, maps failures to
 * 404/502/503/504 (answered by one injectable `onError`) and proxies
 * WebSocket upgrades. A {@linkcode RequestContext} carries what is known of
 * a request (route, request id, forwarding fields, timings) from the public
 * handler through the proxy to the stages after it.
 *
 * @example
 * ```ts
 * import { createProxy } from "./mod.ts";
 * const proxy = createProxy(table, { logger });
 * Deno.serve({ port: 8080 }, proxy);
 * ```
 *
 * @module
 */
export {
  createProxy,
  type ProxyHandler,
  type ProxyLimits,
  type ProxyOptions,
} from "./proxy.ts";
export {
  type ContextHandler,
  type HeaderReader,
  RequestContext,
  type RouteMatcher,
  type Stage,
  workerContext,
  type WorkerContextOptions,
} from "./context.ts";
export {
  type ErrorHandler,
  errorResponse,
  type ProxyFailure,
} from "./_errors.ts";
export { MISSING_HOST } from "./_failures.ts";
export type { ForwardInit, RequestFields } from "./_headers.ts";
export { HOP_BY_HOP } from "./_headers.ts";
