// Folder-private test helpers.
import type { Clock } from "./clock.ts";

/** A clock whose timers fire only when the test says so. */
export class FakeClock implements Clock {
  time = 1_000_000;
  timers = new Map<number, { fn: () => void; at: number; ms: number }>();
  delays: number[] = [];
  #id = 0;
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): number {
    this.delays.push(ms);
    this.timers.set(++this.#id, { fn, at: this.time + ms, ms });
    return this.#id;
  }
  clearTimeout(id: number | undefined): void {
    if (id !== undefined) this.timers.delete(id);
  }
  /** Jumps to the next timer and runs it. */
  fireNext(): void {
    const [id, timer] = [...this.timers].sort((a, b) => a[1].at - b[1].at)[0]!;
    this.timers.delete(id);
    this.time = timer.at;
    timer.fn();
  }
}
