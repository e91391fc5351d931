import assert from "node:assert/strict";
import type { Logger } from "../log/mod.ts";
import type { Supervisor } from "../supervisor/mod.ts";
import { CrashReporter } from "./crash_report.ts";
import { LiveReload } from "./livereload.ts";

function crashingWorker(lines: number): [string, Deno.CommandOptions] {
  return ["sh", {
    args: [
      "-c",
      `i=0; while [ $i -lt ${lines} ]; do echo "error: line $i" >&2; i=$((i+1)); done; exit 1`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { TQ_WORKER_NAME: "w" },
  }];
}

async function runOnce(
  reporter: CrashReporter,
  lines: number,
): Promise<number> {
  const spawn = reporter.wrap((cmd, options) =>
    new Deno.Command(cmd, options).spawn()
  );
  const [cmd, options] = crashingWorker(lines);
  const child = spawn(cmd, options);
  let text = "";
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    text += chunk;
  }
  await child.status;
  return text.split("\n").filter(Boolean).length;
}

Deno.test("CrashReporter holds back a repeated short crash, but a crash with more stderr than it compares is printed in full each time", async (t) => {
  const warnings: string[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (msg) => void warnings.push(msg),
    error() {},
    line() {},
  };
  const live = new LiveReload();
  const reporter = new CrashReporter({
    live,
    supervisor: { workers: new Map() } as unknown as Pick<
      Supervisor,
      "workers"
    >,
    logger,
    holdMs: 60_000,
  });
  try {
    await t.step("short output: the repeat is one count line", async () => {
      assert.equal(await runOnce(reporter, 20), 20);
      assert.equal(await runOnce(reporter, 20), 0);
      assert.deepEqual(warnings, [
        "worker crashed again with the same output",
      ]);
    });
    await t.step("long output: never compared past the bound", async () => {
      warnings.length = 0;
      assert.equal(await runOnce(reporter, 2000), 2000);
      assert.equal(await runOnce(reporter, 2000), 2000);
      assert.deepEqual(warnings, []);
    });
  } finally {
    reporter.close();
    live.close();
  }
});
