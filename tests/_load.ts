// A bounded load loop for zero-downtime tests: a few concurrent clients on real
// sockets, counting every failed request.

/** What the load loop saw. */
export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
  /** Distinct response bodies' `tag` fields (or texts), in order of first sight. */
  tags: string[];
}

/** A running load loop; `stop()` ends it and returns the counts. */
export interface Load {
  stop(): Promise<LoadResult>;
  /** Requests answered so far. */
  count(): number;
}

/** Starts `concurrency` clients requesting `url` back to back until stopped or `maxMs` passes. */
export function startLoad(
  url: string,
  options: { concurrency?: number; maxMs?: number } = {},
): Load {
  const { concurrency = 6, maxMs = 60_000 } = options;
  const result: LoadResult = { ok: 0, failed: 0, errors: [], tags: [] };
  let running = true;
  const deadline = Date.now() + maxMs;
  const client = async () => {
    while (running && Date.now() < deadline) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        const text = await res.text();
        if (res.status !== 200) {
          result.failed++;
          if (result.errors.length < 10) {
            result.errors.push(`status ${res.status}: ${text.slice(0, 200)}`);
          }
          continue;
        }
        result.ok++;
        let tag = text;
        try {
          tag = JSON.parse(text).tag ?? text;
        } catch {
          // Plain text body.
        }
        if (!result.tags.includes(tag)) result.tags.push(tag);
      } catch (err) {
        result.failed++;
        if (result.errors.length < 10) result.errors.push(String(err));
      }
    }
  };
  const clients = Array.from({ length: concurrency }, client);
  return {
    count: () => result.ok + result.failed,
    stop: async () => {
      running = false;
      await Promise.all(clients);
      return result;
    },
  };
}
