import assert from "node:assert/strict";
import { FileSink } from "./file_sink.ts";

Deno.test("FileSink changes file when the date changes (injected clock)", () => {
  const dir = Deno.makeTempDirSync();
  let now = new Date("2026-01-02T23:59:59Z");
  const sink = new FileSink(`${dir}/logs/tq_{date}.log`, { now: () => now });
  sink.write("one");
  sink.write("two");
  assert.equal(sink.path, `${dir}/logs/tq_2026-01-02.log`);
  now = new Date("2026-01-03T00:00:01Z");
  sink.write("three");
  assert.equal(sink.path, `${dir}/logs/tq_2026-01-03.log`);
  sink.close();
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

Deno.test("FileSink.reopen() starts a new file after the old one was moved away", () => {
  const dir = Deno.makeTempDirSync();
  const sink = new FileSink(`${dir}/server.log`);
  sink.write("before");
  Deno.renameSync(`${dir}/server.log`, `${dir}/server.log.1`);
  sink.write("still the moved file");
  sink.reopen();
  sink.write("after");
  sink.close();
  assert.equal(
    Deno.readTextFileSync(`${dir}/server.log.1`),
    "before\nstill the moved file\n",
  );
  assert.equal(Deno.readTextFileSync(`${dir}/server.log`), "after\n");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("FileSink names the path it cannot open, once", () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/file`, "");
  const sink = new FileSink(`${dir}/file/sub/x.log`);
  assert.throws(() => sink.write("a"), /Cannot open log file ".*x\.log"/);
  sink.write("dropped, no second error");
  Deno.removeSync(dir, { recursive: true });
});
