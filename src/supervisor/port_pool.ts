/** Every port of the pool is taken: by our instances or by other processes. */
export class NoFreePortError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoFreePortError";
  }
}

/** Options for {@linkcode PortPool}. */
export interface PortPoolOptions {
  /** Host the workers listen on. Default `"127.0.0.1"`. */
  hostname?: string;
  /** Returns true when nothing listens on the port. Default: try to bind it. */
  isFree?: (port: number) => boolean;
}

function canBind(hostname: string, port: number): boolean {
  try {
    const listener = Deno.listen({ hostname, port });
    listener.close();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return false;
    if (err instanceof Deno.errors.PermissionDenied) return false;
    throw err;
  }
}

/**
 * Hands out loopback ports from `[start, end]`, skipping ports in use by this
 * pool and ports a foreign process holds. Ports rotate so a just-released port
 * is not reused at once.
 *
 * @example
 * ```ts
 * const pool = new PortPool(9000, 9999);
 * const port = pool.acquire();
 * pool.release(port);
 * ```
 */
export class PortPool {
  #start: number;
  #end: number;
  #next: number;
  #used = new Set<number>();
  #isFree: (port: number) => boolean;

  /**
   * @throws {RangeError} When the range is empty or outside 1–65535.
   */
  constructor(start: number, end: number, options: PortPoolOptions = {}) {
    if (
      !Number.isInteger(start) || !Number.isInteger(end) || start < 1 ||
      end > 65535 || start > end
    ) {
      throw new RangeError(`Invalid port range "${start}-${end}"`);
    }
    const {
      hostname = "127.0.0.1",
      isFree = (port) => canBind(hostname, port),
    } = options;
    this.#start = start;
    this.#end = end;
    this.#next = start;
    this.#isFree = isFree;
  }

  /**
   * Returns a free port and marks it used.
   *
   * @throws {NoFreePortError} When every port of the range is taken (a runtime failure, exit code 1, not bad usage).
   */
  acquire(): number {
    const size = this.#end - this.#start + 1;
    for (let i = 0; i < size; i++) {
      const port = this.#next;
      this.#next = port >= this.#end ? this.#start : port + 1;
      if (this.#used.has(port)) continue;
      if (!this.#isFree(port)) continue;
      this.#used.add(port);
      return port;
    }
    throw new NoFreePortError(
      `No free port in range "${this.#start}-${this.#end}" (workers.port_range_start-port_range_end)`,
    );
  }

  /** Returns a port to the pool. */
  release(port: number): void {
    this.#used.delete(port);
  }
}
