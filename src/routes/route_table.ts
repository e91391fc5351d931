/** One healthy instance chosen for a request; `release()` must be called once the response ends. */
export interface UpstreamTarget {
  /** Base URL of the instance, e.g. `http://127.0.0.1:9001`. */
  readonly origin: string;
  /** Marks the request finished (decrements the instance's in-flight count). */
  release(): void;
}

/** What the proxy knows about a worker: its route and a way to pick a healthy instance. */
export interface Upstream {
  /** Worker name (folder name). */
  readonly name: string;
  /** Route prefix, `/` or `/a/b` (no trailing slash). */
  readonly route: string;
  /** Milliseconds to wait for response headers before answering 504. */
  readonly writeTimeoutMs: number;
  /**
   * Milliseconds a client may be silent mid-body before a 408. Default: the
   * proxy's `readTimeoutMs` (`server.read_timeout_seconds`).
   */
  readonly readTimeoutMs?: number;
  /**
   * Milliseconds an idle keep-alive connection to this worker is kept
   * (`workers.default` / `workers.paths` `idle_timeout_seconds`). Default:
   * the proxy's `idleTimeoutMs`.
   */
  readonly idleTimeoutMs?: number;
  /**
   * Milliseconds a request whose instance died may wait for a healthy one
   * (`workers.default.retry_window_ms`). Default: the proxy's `retryWindowMs`.
   */
  readonly retryWindowMs?: number;
  /**
   * Picks a healthy instance and counts the request as in flight, or returns
   * `undefined` when none is healthy (the proxy then answers 503).
   */
  acquire(): UpstreamTarget | undefined;
  /** Seconds for the `Retry-After` header of a 503. */
  retryAfterSeconds(): number;
  /**
   * Like {@linkcode acquire}, but waits up to `timeoutMs` (or until `signal`
   * aborts) for a healthy instance, e.g. the replacement of one that just
   * died; `undefined` when none serves in time. Optional: an upstream without
   * it has nothing to wait for.
   */
  acquireWithin?(
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<UpstreamTarget | undefined>;
}

/**
 * Returns the raw path of an absolute request URL: the text after the
 * authority, before `?` or `#`, exactly as the client sent it. `new URL()`
 * would resolve `..` and `%2e%2e` segments, which routing and static files
 * must see as sent.
 */
export function rawPathOf(url: string): string {
  const scheme = url.indexOf("://");
  const start = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  if (start < 0) return "/";
  let end = url.length;
  const q = url.indexOf("?", start);
  if (q >= 0) end = q;
  const h = url.indexOf("#", start);
  if (h >= 0 && h < end) end = h;
  return url.slice(start, end);
}

/** True when `pathname` is `route` or lies under it on a path-segment boundary. */
export function routeMatches(route: string, pathname: string): boolean {
  if (route === "/") return true;
  return pathname === route ||
    (pathname.startsWith(route) && pathname.charCodeAt(route.length) === 47);
}

/**
 * The route → upstream table shared by the supervisor (which fills it) and the
 * proxy (which reads it). Longest prefix wins, on path-segment boundaries.
 *
 * @example
 * ```ts
 * const table = new RouteTable();
 * table.set([upstreamA, upstreamB]);
 * table.match("/api/users/7")?.name;
 * ```
 */
export class RouteTable {
  #sorted: Upstream[] = [];

  /** Replaces the whole table atomically. */
  set(upstreams: Iterable<Upstream>): void {
    this.#sorted = [...upstreams].sort((a, b) =>
      b.route.length - a.route.length
    );
  }

  /** Adds or replaces the upstream with the same name. */
  put(upstream: Upstream): void {
    this.set([
      ...this.#sorted.filter((u) => u.name !== upstream.name),
      upstream,
    ]);
  }

  /** Removes the upstream of a worker. */
  delete(name: string): void {
    this.set(this.#sorted.filter((u) => u.name !== name));
  }

  /** Returns the upstream with the longest route that matches `pathname`. */
  match(pathname: string): Upstream | undefined {
    for (const upstream of this.#sorted) {
      if (routeMatches(upstream.route, pathname)) return upstream;
    }
    return undefined;
  }

  /** All upstreams, longest route first. */
  list(): readonly Upstream[] {
    return this.#sorted;
  }
}
