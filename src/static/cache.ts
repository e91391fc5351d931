/** Counters of a {@linkcode StaticCache}, read by the admin API and `/metrics`. */
export interface StaticCacheStats {
  /** Answers served from a cached entry (no path resolution). */
  hits: number;
  /** Answers that resolved the path on disk (a new, invalidated or uncacheable entry). */
  misses: number;
  /** `stat` calls made to revalidate an entry. */
  revalidations: number;
  /** Entries dropped because the file changed, or by {@linkcode StaticCache.invalidate}. */
  invalidations: number;
  /** Entries dropped to stay under `maxBytes` (least recently used first). */
  evictions: number;
  /** Entries held now. */
  entries: number;
  /** Memory held now: cached bodies (every encoding) plus a fixed overhead per entry. */
  bytes: number;
  /** The bound of `bytes` (`server.static.cache_max_bytes`). */
  maxBytes: number;
  /** Body bytes of static answers sent (GET; from memory or disk). */
  servedBytes: number;
}

/** What the cache needs to know about an entry. */
export interface Sized {
  /** The worker whose `public/` the entry belongs to. */
  readonly worker: string;
  /** Memory the entry holds, in bytes; may grow with {@linkcode StaticCache.grow}. */
  memory: number;
}

/**
 * A map of resolved static paths to entries, bounded by the memory the
 * entries hold and evicting the least recently used first (a `Map` keeps
 * insertion order; a hit moves the entry to the end).
 */
export class StaticCache<E extends Sized> {
  readonly #entries = new Map<string, E>();
  readonly #stats: StaticCacheStats;

  /** @param maxBytes The memory bound; 0 disables the cache (nothing is kept). */
  constructor(maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(
        `Cache max bytes "${maxBytes}" must be a non-negative integer`,
      );
    }
    this.#stats = {
      hits: 0,
      misses: 0,
      revalidations: 0,
      invalidations: 0,
      evictions: 0,
      entries: 0,
      bytes: 0,
      maxBytes,
      servedBytes: 0,
    };
  }

  /** True when entries can be kept at all. */
  get enabled(): boolean {
    return this.#stats.maxBytes > 0;
  }

  /** A snapshot of the counters. */
  stats(): StaticCacheStats {
    return { ...this.#stats, entries: this.#entries.size };
  }

  /** The live counters, for the handler to count on. */
  get counters(): StaticCacheStats {
    return this.#stats;
  }

  /** The entry for `key`, now the most recently used. */
  get(key: string): E | undefined {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /** True when `entry` is still the one cached under `key`. */
  holds(key: string, entry: E): boolean {
    return this.#entries.get(key) === entry;
  }

  /** Keeps `entry` under `key` when it fits, evicting the least recently used. */
  set(key: string, entry: E): void {
    this.#remove(key);
    if (entry.memory > this.#stats.maxBytes) return;
    this.#entries.set(key, entry);
    this.#stats.bytes += entry.memory;
    this.#evict();
  }

  /** Accounts `bytes` more memory to the entry cached under `key` (a compressed body). */
  grow(key: string, entry: E, bytes: number): void {
    if (!this.holds(key, entry)) return;
    entry.memory += bytes;
    this.#stats.bytes += bytes;
    this.#evict();
  }

  /** Drops the entry under `key` because its file changed. */
  delete(key: string): void {
    if (this.#remove(key)) this.#stats.invalidations++;
  }

  /**
   * Drops every entry of `worker`, or all entries: the dev watcher saw a
   * `public/` change, or a SIGHUP check found `public/` newer.
   *
   * @returns How many entries were dropped.
   */
  invalidate(worker?: string): number {
    let dropped = 0;
    for (const [key, entry] of this.#entries) {
      if (worker !== undefined && entry.worker !== worker) continue;
      this.#remove(key);
      dropped++;
    }
    this.#stats.invalidations += dropped;
    return dropped;
  }

  #remove(key: string): boolean {
    const old = this.#entries.get(key);
    if (old === undefined) return false;
    this.#entries.delete(key);
    this.#stats.bytes -= old.memory;
    return true;
  }

  #evict(): void {
    for (const [key] of this.#entries) {
      if (this.#stats.bytes <= this.#stats.maxBytes) return;
      this.#remove(key);
      this.#stats.evictions++;
    }
  }
}
