/**
 * The short-lived per-request entries a shared sweep walks: the proxy's
 * header deadlines, and the waits of `timeouts.ts`.
 *
 * Not a `Set`. Measured behind the proxy at 20k req/s: with the deadlines
 * in a long-lived Set, each scavenge promoted about 300 KB of in-flight
 * request state (its `Request`, headers, promises) to the old generation,
 * and the RSS after 20 s of load was 20–25 MiB higher; with these slots it
 * promotes about 1 KB (tests/proxy_gc_test.ts). The likely cause: a Set
 * whose entries come and go at request rate keeps rehashing, and each table
 * it drops, already in the old generation, still points at the entries it
 * held until a full GC; the scavenger takes such old-to-young pointers for
 * live ones. An array that only grows, its slots emptied on delete, leaves
 * no such tables behind.
 *
 * @module
 */

/** Entries in reusable slots of one array; see the module doc for why. */
export class Slots<T extends object> {
  readonly #items: (T | undefined)[] = [];
  /** Emptied slots, reused newest first. */
  readonly #free: number[] = [];
  #size = 0;

  /** How many entries are held. */
  get size(): number {
    return this.#size;
  }

  /** Holds `item`; returns its slot, for {@linkcode delete}. */
  add(item: T): number {
    const slot = this.#free.pop() ?? this.#items.length;
    this.#items[slot] = item;
    this.#size++;
    return slot;
  }

  /** Drops `item` from `slot`; a no-op when the slot holds something else (already dropped). */
  delete(slot: number, item: T): void {
    if (this.#items[slot] !== item) return;
    this.#items[slot] = undefined;
    this.#free.push(slot);
    this.#size--;
  }

  /** Calls `fn` for each entry; `fn` may delete entries, this one included. */
  forEach(fn: (item: T, slot: number) => void): void {
    const items = this.#items;
    for (let slot = 0; slot < items.length; slot++) {
      const item = items[slot];
      if (item !== undefined) fn(item, slot);
    }
  }
}
