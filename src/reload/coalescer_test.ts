import assert from "node:assert/strict";
import { Coalescer } from "./coalescer.ts";
import { waitFor } from "../../tests/_helpers.ts";

Deno.test("Coalescer turns requests made during a run into exactly one more run", async () => {
  let runs = 0;
  let release: () => void = () => {};
  const coalescer = new Coalescer(async () => {
    runs++;
    await new Promise<void>((resolve) => release = resolve);
    return runs;
  });
  const first = coalescer.request();
  const during = [
    coalescer.request(),
    coalescer.request(),
    coalescer.request(),
  ];
  release();
  assert.equal(await first, 1);
  await waitFor(() => runs === 2, 1000, "the second run to start");
  release();
  assert.deepEqual(await Promise.all(during), [2, 2, 2]);
  assert.equal(runs, 2);
});
