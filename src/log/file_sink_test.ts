import assert from "node:assert/strict";
import { createFileSink } from "./file_sink.ts";

Deno.test("createFileSink appends to a file named by the current date", () => {
  const dir = Deno.makeTempDirSync();
  let now = new Date("2026-01-02T10:00:00Z");
  const write = createFileSink(`${dir}/logs/tq_{date}.log`, {
    stderr: false,
    now: () => now,
  });
  write("one");
  write("two");
  now = new Date("2026-01-03T00:00:01Z");
  write("three");
  assert.equal(
    Deno.readTextFileSync(`${dir}/logs/tq_2026-01-02.log`),
    "one\ntwo\n",
  );
  assert.equal(
    Deno.readTextFileSync(`${dir}/logs/tq_2026-01-03.log`),
    "three\n",
  );
  Deno.removeSync(dir, { recursive: true });
});
