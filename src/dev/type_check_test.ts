import assert from "node:assert/strict";
import { join } from "node:path";
import type { LogFields, Logger } from "../log/mod.ts";
import { LiveReload } from "./livereload.ts";
import { parseTypeErrors, TypeChecker } from "./type_check.ts";
import { waitFor } from "../../tests/_helpers.ts";

Deno.test("parseTypeErrors() takes the first error, its code frame, location and count", () => {
  const output = [
    "TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.",
    'const n: number = "x";',
    "      ^",
    "    at file:///srv/app/workers/a/src/main%20x.ts:3:7",
    "",
    "TS2304 [ERROR]: Cannot find name 'y'.",
    "y;",
    "^",
    "    at file:///srv/app/workers/a/src/main%20x.ts:4:1",
    "",
    "Found 2 errors.",
    "",
    "error: Type checking failed.",
  ].join("\n");
  assert.deepEqual(parseTypeErrors(output), {
    message: "TS2322: Type 'string' is not assignable to type 'number'.\n\n" +
      'const n: number = "x";\n      ^\n\n(1 more type error)',
    count: 2,
    file: "/srv/app/workers/a/src/main x.ts",
    line: 3,
    column: 7,
  });
});

Deno.test("parseTypeErrors() finds nothing in output without a type error", () => {
  assert.equal(parseTypeErrors("error: Module not found\n"), undefined);
  assert.equal(parseTypeErrors(""), undefined);
});

Deno.test("TypeChecker says which check ran out of time, and a failure that is no type error is not reported as passed", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tq-typecheck-" });
  const records: { level: string; msg: string; fields: LogFields }[] = [];
  const logger: Logger = {
    debug: (msg, fields = {}) => records.push({ level: "debug", msg, fields }),
    info: (msg, fields = {}) => records.push({ level: "info", msg, fields }),
    warn: (msg, fields = {}) => records.push({ level: "warn", msg, fields }),
    error: (msg, fields = {}) => records.push({ level: "error", msg, fields }),
    line() {},
  };
  const live = new LiveReload();
  const emitted: string[] = [];
  const emit = live.emit.bind(live);
  live.emit = (e) => {
    emitted.push(`${e.type}:${"kind" in e ? e.kind : ""}`);
    emit(e);
  };
  const target = {
    name: "w",
    entry: join(dir, "main.ts"),
    binPath: join(dir, "w"),
    dir,
  };
  const until = (what: string, done: () => boolean) =>
    waitFor(done, 10_000, what);
  try {
    await t.step("a check that hangs is killed and named", async () => {
      // A "deno" that never finishes.
      const slow = join(dir, "slow-deno");
      await Deno.writeTextFile(slow, "#!/bin/sh\nexec sleep 30\n", {
        mode: 0o755,
      });
      const checker = new TypeChecker({
        live,
        logger,
        denoPath: slow,
        timeoutMs: 200,
        delayMs: 0,
      });
      checker.check(target);
      await until(
        "the timeout warning",
        () => records.some((r) => r.level === "warn"),
      );
      await checker.close();
      const warn = records.find((r) => r.level === "warn")!;
      assert.equal(warn.msg, "type check timed out");
      assert.equal(warn.fields.worker, "w");
      assert.match(String(warn.fields.cmd), /^deno check --quiet .*main\.ts$/);
      assert.equal(warn.fields.key, "deployment.dev.build.timeout_ms");
      assert.deepEqual(emitted, []);
    });
    await t.step(
      "a check failing without a type error clears nothing",
      async () => {
        records.length = 0;
        const broken = join(dir, "broken-deno");
        await Deno.writeTextFile(
          broken,
          '#!/bin/sh\necho "error: Module not found \\"file:///x.ts\\"" >&2\nexit 1\n',
          { mode: 0o755 },
        );
        const checker = new TypeChecker({
          live,
          logger,
          denoPath: broken,
          delayMs: 0,
        });
        checker.check(target);
        await until("its debug line", () => records.length > 0);
        await checker.close();
        assert.deepEqual(records.map((r) => r.msg), [
          "type check failed without a type error",
        ]);
        assert.match(String(records[0]!.fields.output), /Module not found/);
        assert.deepEqual(emitted, [], "no ok event: the check did not pass");
      },
    );
  } finally {
    live.close();
    await Deno.remove(dir, { recursive: true });
  }
});
