import assert from "node:assert/strict";
import { Slots } from "./slots.ts";

function items<T extends object>(slots: Slots<T>): T[] {
  const out: T[] = [];
  slots.forEach((item) => out.push(item));
  return out;
}

Deno.test("slots hold what was added until it is deleted", () => {
  const slots = new Slots<{ n: number }>();
  const a = { n: 1 }, b = { n: 2 }, c = { n: 3 };
  const sa = slots.add(a), sb = slots.add(b);
  slots.add(c);
  assert.equal(slots.size, 3);
  slots.delete(sb, b);
  assert.equal(slots.size, 2);
  assert.deepEqual(items(slots), [a, c]);
  slots.delete(sa, a);
  assert.deepEqual(items(slots), [c]);
});

Deno.test("an emptied slot is reused, and a stale delete leaves its new entry alone", () => {
  const slots = new Slots<{ n: number }>();
  const a = { n: 1 }, b = { n: 2 };
  const sa = slots.add(a);
  slots.delete(sa, a);
  const sb = slots.add(b);
  assert.equal(sb, sa);
  slots.delete(sa, a); // a second delete of a: b stays
  slots.delete(sa, a);
  assert.equal(slots.size, 1);
  assert.deepEqual(items(slots), [b]);
});

Deno.test("forEach may delete entries as it goes, the current one included", () => {
  const slots = new Slots<{ n: number }>();
  const all = [1, 2, 3, 4].map((n) => ({ n }));
  const at = new Map(all.map((item) => [item, slots.add(item)]));
  const seen: number[] = [];
  slots.forEach((item, slot) => {
    seen.push(item.n);
    slots.delete(slot, item);
    if (item.n === 1) slots.delete(at.get(all[2]!)!, all[2]!); // a later one
  });
  assert.deepEqual(seen, [1, 2, 4]);
  assert.equal(slots.size, 0);
  assert.deepEqual(items(slots), []);
});
