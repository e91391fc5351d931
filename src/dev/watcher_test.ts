import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultConfig } from "../config/mod.ts";
import { recordingLogger } from "../build/_testing.ts";
import type { Supervisor } from "../supervisor/mod.ts";
import { LiveReload } from "./livereload.ts";
import { type DevHost, DevWatcher } from "./watcher.ts";
import { waitFor } from "../../tests/_helpers.ts";

/** A host with no workers running: it records what the watcher asks of it. */
function fakeHost(root: string) {
  const log = recordingLogger();
  const calls = { reloads: 0, invalidated: [] as string[] };
  const host: DevHost = {
    root,
    log,
    supervisor: { workers: new Map() } as unknown as Supervisor,
    builder: {
      dependents: () => [],
      invalidate: () => {},
      build: () => Promise.reject(new Error("no build expected")),
      graph: () => Promise.resolve([]),
    },
    goBuilder: {
      build: () => Promise.reject(new Error("no build expected")),
    },
    config: defaultConfig(),
    reload: () => {
      calls.reloads++;
      return Promise.resolve({
        ms: 0,
        workers: 0,
        config: "unchanged",
        actions: [],
      });
    },
    discover: () => Promise.resolve([]),
    invalidateStatic: (worker) => calls.invalidated.push(worker),
  };
  return { host, log, calls };
}

Deno.test("DevWatcher logs lost file events and rescans, so a change made meanwhile is still handled", async () => {
  const root = Deno.makeTempDirSync({ prefix: "tq-watch-" });
  const css = join(root, "workers", "app", "public", "style.css");
  Deno.mkdirSync(join(root, "workers", "app", "public"), { recursive: true });
  Deno.mkdirSync(join(root, "scratch"));
  Deno.writeTextFileSync(css, "a {}\n");
  const { host, log, calls } = fakeHost(root);
  const watcher = new DevWatcher(host, new LiveReload(), { debounceMs: 20 });
  // Deno.watchFs() has its watches in place when it returns: events from
  // here on are seen, nothing to wait for.
  watcher.start();
  try {
    // Thousands of events while this event loop is busy overflow the
    // watcher's queue (Deno's holds 1024), then the edit.
    const writer = new Deno.Command("python3", {
      args: [
        "-c",
        `import os
for i in range(5000): open(os.path.join(${
          JSON.stringify(join(root, "scratch"))
        }, "f%d" % i), "w").close()
open(${JSON.stringify(css)}, "w").write("a { color: red }\\n")`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const blocked = Date.now();
    // deno-lint-ignore no-empty
    while (Date.now() - blocked < 2500) {}
    const done = await writer.output();
    assert.ok(done.success, new TextDecoder().decode(done.stderr));
    await waitFor(
      () => calls.invalidated.includes("app") && calls.reloads > 0,
      10_000,
      "the rescan to handle the CSS edit",
    );
    const lost = log.records.find((r) =>
      r.msg === "file events were lost, rescanning"
    );
    assert.ok(lost, JSON.stringify(log.records.map((r) => r.msg)));
    assert.equal(lost.level, "warn");
    assert.ok(Number(lost.fields.changed_files) >= 1);
  } finally {
    watcher.close();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("DevWatcher ignores tests/ by default: fixtures the suite writes trigger nothing", async () => {
  const root = Deno.makeTempDirSync({ prefix: "tq-watch-" });
  Deno.mkdirSync(join(root, "tests", "testdata", "w", "src"), {
    recursive: true,
  });
  const { host, calls } = fakeHost(root);
  let activity = 0;
  const watcher = new DevWatcher(host, new LiveReload(), {
    debounceMs: 20,
    onActivity: () => activity++,
  });
  watcher.start(); // Watching once it returns (Deno.watchFs is synchronous).
  try {
    Deno.writeTextFileSync(
      join(root, "tests", "testdata", "w", "src", "main.ts"),
      "export {};\n",
    );
    Deno.mkdirSync(join(root, "tests", "testdata", "workers", "x"), {
      recursive: true,
    });
    // What is tested is that nothing happens: no condition to wait for, only time.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(activity, 0);
    assert.equal(calls.reloads, 0);
    assert.equal(watcher.busy, false);
  } finally {
    watcher.close();
    Deno.removeSync(root, { recursive: true });
  }
});
