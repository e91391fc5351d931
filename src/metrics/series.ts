/** Options for {@linkcode RateSeries}. */
export interface RateSeriesOptions {
  /** Seconds kept. Default 60. */
  seconds?: number;
  /** The clock (epoch ms). Default `Date.now`. */
  now?: () => number;
}

/** Per-second request counts and mean latency of one key, oldest first. */
export interface SeriesJson {
  /** Requests in each second. */
  rate: number[];
  /** Mean latency in ms in each second (0 when there was no request). */
  latency_ms: number[];
}

interface Ring {
  second: number[];
  count: number[];
  totalMs: number[];
}

/**
 * Request rate and latency per key over the last minute, in one-second
 * buckets: what the dashboard's sparklines draw.
 *
 * @example
 * ```ts
 * const series = new RateSeries();
 * series.record("index", 12.5);
 * series.snapshot().index.rate.at(-1); // 1
 * ```
 */
export class RateSeries {
  #seconds: number;
  #now: () => number;
  #rings = new Map<string, Ring>();

  constructor(options: RateSeriesOptions = {}) {
    const { seconds = 60, now = Date.now } = options;
    this.#seconds = seconds;
    this.#now = now;
  }

  /** Counts one request of `key` that took `ms`. */
  record(key: string, ms: number): void {
    let ring = this.#rings.get(key);
    if (!ring) {
      const n = this.#seconds;
      ring = {
        second: new Array(n).fill(-1),
        count: new Array(n).fill(0),
        totalMs: new Array(n).fill(0),
      };
      this.#rings.set(key, ring);
    }
    const second = Math.floor(this.#now() / 1000);
    const i = second % this.#seconds;
    if (ring.second[i] !== second) {
      ring.second[i] = second;
      ring.count[i] = 0;
      ring.totalMs[i] = 0;
    }
    ring.count[i]!++;
    ring.totalMs[i]! += ms;
  }

  /** Forgets a key. */
  delete(key: string): void {
    this.#rings.delete(key);
  }

  /** Every key's last `seconds` seconds, the current second last. */
  snapshot(): Record<string, SeriesJson> {
    const out: Record<string, SeriesJson> = {};
    const now = Math.floor(this.#now() / 1000);
    for (const [key, ring] of this.#rings) {
      const rate: number[] = [];
      const latency: number[] = [];
      for (let s = now - this.#seconds + 1; s <= now; s++) {
        const i = ((s % this.#seconds) + this.#seconds) % this.#seconds;
        const count = ring.second[i] === s ? ring.count[i]! : 0;
        rate.push(count);
        latency.push(
          count ? Math.round((ring.totalMs[i]! / count) * 100) / 100 : 0,
        );
      }
      out[key] = { rate, latency_ms: latency };
    }
    return out;
  }
}
