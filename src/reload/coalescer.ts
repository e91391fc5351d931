/**
 * Runs an async job so that requests arriving while it runs coalesce into
 * exactly one more run after it (SIGHUP storms become two checks at most).
 *
 * @example
 * ```ts
 * const reload = new Coalescer(() => check());
 * Deno.addSignalListener("SIGHUP", () => reload.request());
 * ```
 */
export class Coalescer<T> {
  #job: () => Promise<T>;
  #running: Promise<T> | undefined;
  #next: Promise<T> | undefined;

  constructor(job: () => Promise<T>) {
    this.#job = job;
  }

  /** Requests a run; resolves with the result of a run that started after this call. */
  request(): Promise<T> {
    if (!this.#running) {
      this.#running = this.#job().finally(() => this.#running = undefined);
      return this.#running;
    }
    if (!this.#next) {
      this.#next = this.#running.catch(() => undefined).then(() => {
        this.#next = undefined;
        return this.request();
      });
    }
    return this.#next;
  }
}
