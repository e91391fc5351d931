import assert from "node:assert/strict";
import { createServerLog } from "./server_log.ts";
import type { LogRecord } from "./logger.ts";

Deno.test("createServerLog writes the same lines to stdout and the log file, worker output to its own file", () => {
  const dir = Deno.makeTempDirSync();
  const out: string[] = [];
  const records: LogRecord[] = [];
  const now = () => new Date("2026-03-04T05:06:07Z");
  const log = createServerLog({
    logFile: `${dir}/server_{date}.log`,
    workerLogFile: (name) => name === "api" ? `${dir}/{name}_{date}.log` : "",
    now,
    stdout: (line) => out.push(line),
    stderr: () => assert.fail("nothing goes to stderr"),
    onRecord: (r) => records.push(r),
  });
  log.logger.info("worker replaced", { worker: "api", reason: "manual" });
  log.logger.line("api", "GET /users");
  log.logger.line("index", "hello");
  log.logger.debug("hidden");
  log.close();
  assert.deepEqual(out, [
    "2026-03-04T05:06:07.000Z INFO  worker replaced worker=api reason=manual",
    "2026-03-04T05:06:07.000Z [api] GET /users",
    "2026-03-04T05:06:07.000Z [index] hello",
  ]);
  assert.equal(
    Deno.readTextFileSync(`${dir}/server_2026-03-04.log`),
    `${out[0]}\n${out[2]}\n`,
  );
  assert.equal(
    Deno.readTextFileSync(`${dir}/api_2026-03-04.log`),
    `${out[1]}\n`,
  );
  // The observer sees debug records too: events must not depend on the level.
  assert.deepEqual(records.map((r) => r.msg), ["worker replaced", "hidden"]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("createServerLog with quiet sends only warnings and errors to stderr, everything to the file", () => {
  const dir = Deno.makeTempDirSync();
  const err: string[] = [];
  const log = createServerLog({
    quiet: true,
    logFile: `${dir}/s.log`,
    stdout: () => assert.fail("quiet writes nothing to stdout"),
    stderr: (line) => err.push(line),
  });
  log.logger.info("tqserver ready");
  log.logger.warn("config warning", { problem: "x" });
  log.close();
  assert.equal(err.length, 1);
  assert.match(err[0]!, /WARN {2}config warning problem=x$/);
  assert.equal(Deno.readTextFileSync(`${dir}/s.log`).split("\n").length, 3);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("createServerLog opens the next day's file at the first line after midnight (injected clock)", () => {
  const dir = Deno.makeTempDirSync();
  let now = new Date("2026-03-04T23:59:59.900Z");
  const log = createServerLog({
    logFile: `${dir}/server_{date}.log`,
    now: () => now,
    stdout: () => {},
  });
  log.logger.info("before midnight");
  now = new Date("2026-03-05T00:00:00.100Z");
  log.logger.info("after midnight");
  log.close();
  assert.match(
    Deno.readTextFileSync(`${dir}/server_2026-03-04.log`),
    /^[^\n]*before midnight\n$/,
  );
  assert.match(
    Deno.readTextFileSync(`${dir}/server_2026-03-05.log`),
    /^[^\n]*after midnight\n$/,
  );
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("colour codes stay on a terminal and never reach a log file", () => {
  const dir = Deno.makeTempDirSync();
  const red = "\x1b[31merror\x1b[0m: boom \x1b[1m\x1b[38;5;245mat\x1b[0m x";
  for (const colors of [true, false]) {
    const out: string[] = [];
    const log = createServerLog({
      logFile: `${dir}/server_${colors}.log`,
      now: () => new Date("2026-03-04T05:06:07Z"),
      stdout: (line) => out.push(line),
      colors,
    });
    log.logger.line("w", red);
    log.close();
    const file = Deno.readTextFileSync(`${dir}/server_${colors}.log`);
    assert.equal(file, "2026-03-04T05:06:07.000Z [w] error: boom at x\n");
    assert.equal(
      out[0],
      `2026-03-04T05:06:07.000Z [w] ${colors ? red : "error: boom at x"}`,
    );
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("a multi-line field (a code frame) is written as lines of its own, not \\n escapes", () => {
  const out: string[] = [];
  const log = createServerLog({
    now: () => new Date("2026-03-04T05:06:07Z"),
    stdout: (line) => out.push(line),
    colors: false,
  });
  log.logger.error("build failed", {
    worker: "a",
    error:
      'Expected ";" but found "x"\n\n3 | const a = 1 x;\n                ^',
    line: 3,
  });
  const lines = out.join("\n").split("\n");
  assert.deepEqual(lines, [
    '2026-03-04T05:06:07.000Z ERROR build failed worker=a error="Expected \\";\\" but found \\"x\\"" line=3',
    "",
    "    3 | const a = 1 x;",
    "                    ^",
  ]);
  assert.ok(!out.join("").includes("\\n"));
});
