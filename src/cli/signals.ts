/**
 * The process's signal handling from its first instant. `main.ts` installs
 * it before it loads anything else, so a signal that arrives while the server
 * starts never meets the default action (SIGHUP would kill the process,
 * SIGTERM would skip the cleanup, SIGUSR1 would kill it too): SIGHUPs and
 * SIGUSR1s are queued and run once the server is ready; the first SIGTERM or
 * SIGINT aborts {@linkcode ProcessSignals.stopping} so the start can be cancelled.
 *
 * This module imports nothing, to load in no time.
 *
 * @module
 */

/** A signal that stops the server. */
export type StopSignal = "SIGTERM" | "SIGINT";

/** What to do with signals once the server runs. */
export interface SignalHandlers {
  /** A SIGHUP (ones queued during startup arrive as one call). */
  hup(): void;
  /** A SIGTERM or SIGINT (one that arrived during startup is delivered at once). */
  stop(signal: StopSignal): void;
  /** A SIGUSR1: reopen the log files (ones queued during startup arrive as one call). */
  reopen?(): void;
}

/** SIGHUP, SIGTERM, SIGINT and SIGUSR1, caught from the start and queued until handlers are set. */
export class ProcessSignals {
  #handlers: SignalHandlers | undefined;
  #hups = 0;
  #reopens = 0;
  #stop: StopSignal | undefined;
  #abort = new AbortController();
  #listeners: [Deno.Signal, () => void][] = [];

  /** Installs the listeners of this process (call once, first thing). */
  static install(): ProcessSignals {
    const signals = new ProcessSignals();
    signals.#listen("SIGHUP", () => signals.#hup());
    signals.#listen("SIGTERM", () => signals.#stopped("SIGTERM"));
    signals.#listen("SIGINT", () => signals.#stopped("SIGINT"));
    signals.#listen("SIGUSR1", () => signals.#reopen());
    return signals;
  }

  /** Aborts at the first SIGTERM or SIGINT (its reason is the signal name). */
  get stopping(): AbortSignal {
    return this.#abort.signal;
  }

  /** The first stop signal received, if any. */
  get stopSignal(): StopSignal | undefined {
    return this.#stop;
  }

  /** SIGHUPs received while no handler was set. */
  get queuedHups(): number {
    return this.#hups;
  }

  /**
   * Routes signals to `handlers` from now on, first delivering what was
   * queued: a stop signal, else one SIGUSR1 and one SIGHUP for any number
   * of queued ones.
   */
  handle(handlers: SignalHandlers): void {
    this.#handlers = handlers;
    if (this.#stop) {
      handlers.stop(this.#stop);
      return;
    }
    if (this.#reopens > 0) {
      this.#reopens = 0;
      handlers.reopen?.();
    }
    if (this.#hups > 0) {
      this.#hups = 0;
      handlers.hup();
    }
  }

  /** Removes the listeners (tests; the process is about to exit anyway). */
  dispose(): void {
    for (const [signal, fn] of this.#listeners) {
      Deno.removeSignalListener(signal, fn);
    }
    this.#listeners = [];
  }

  #listen(signal: Deno.Signal, fn: () => void): void {
    try {
      Deno.addSignalListener(signal, fn);
      this.#listeners.push([signal, fn]);
    } catch {
      // No such signal here (Windows has no SIGHUP): nothing to catch.
    }
  }

  #hup(): void {
    if (this.#handlers) this.#handlers.hup();
    else this.#hups++;
  }

  #reopen(): void {
    if (this.#handlers) this.#handlers.reopen?.();
    else this.#reopens++;
  }

  #stopped(signal: StopSignal): void {
    if (!this.#stop) {
      this.#stop = signal;
      this.#abort.abort(signal);
    }
    this.#handlers?.stop(signal);
  }
}
