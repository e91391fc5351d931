// End-to-end, dev mode: a worker that crashes is shown like a build error (source-mapped, on
// /_tq/events and in last_error, until an instance starts), a crash loop logs its trace once.
import assert from "node:assert/strict";
import {
  makeProject,
  type RunningServer,
  startServer,
  waitFor,
} from "./_helpers.ts";
import { plainWorker, subscribe, writeSource } from "./_dev_events.ts";

const DEBOUNCE =
  "deployment:\n  dev:\n    file_watcher:\n      debounce_ms: 30\n";

// The throw is on line 4 of boom.ts, column 11.
function boomSource(throws: boolean): string {
  return `// A helper that fails when told to.
export function boom(on: boolean): void {
  if (on && ${throws}) {
    throw new Error("kaboom at start");
  }
}
`;
}

function mainSource(throws: boolean, version: string): string {
  return plainWorker(
    `"${version}"`,
    `import { boom } from "./boom.ts";\nboom(${throws});\n`,
  );
}

async function get(server: RunningServer, path: string) {
  const res = await fetch(server.base + path);
  return { status: res.status, text: await res.text() };
}

function workerLines(server: RunningServer, needle: string): number {
  return server.logs().split("\n").filter((l) =>
    l.includes("[w] ") && l.includes(needle)
  ).length;
}

Deno.test("a worker that throws at start is shown source-mapped until it is fixed, and its crash loop logs the trace once", async (t) => {
  const project = makeProject({ workers: {}, deploymentYaml: DEBOUNCE });
  writeSource(project, "w", "boom.ts", boomSource(true));
  const main = writeSource(project, "w", "main.ts", mainSource(true, "w1"));
  const server = await startServer(project, ["--mode", "dev"]);
  const events = await subscribe(server);
  try {
    await t.step(
      "the crash reaches /_tq/events with the src/ file and line",
      async () => {
        const crash = await waitFor(
          () =>
            events.list.find((e) =>
              e.type === "error" && e.data.kind === "crash"
            ),
          10_000,
          "a crash event",
        );
        assert.equal(crash.data.worker, "w");
        assert.match(String(crash.data.file), /\/workers\/w\/src\/boom\.ts$/);
        assert.equal(crash.data.line, 4);
        assert.match(String(crash.data.message), /kaboom at start/);
        assert.match(String(crash.data.message), /boom\.ts:4:11/);
        assert.doesNotMatch(String(crash.data.message), /bin\/w:\d+/);
        const lastError = await waitFor(
          async () => {
            const w = (await server.status()).workers.find((x) =>
              x.name === "w"
            );
            return /kaboom at start/.test(w?.last_error ?? "") &&
              w!.last_error;
          },
          5000,
          "last_error with the crash",
        );
        assert.match(String(lastError), /src\/boom\.ts:4:11/);
        assert.equal((await get(server, "/w")).status, 503);
      },
    );

    await t.step(
      "the crash loop prints the trace once, then one line per crash",
      async () => {
        await server.waitForLog(
          /crashed again with the same output worker=w times=3/,
          10_000,
        );
        assert.equal(workerLines(server, "Error: kaboom at start"), 1);
      },
    );

    await t.step(
      "fixing the file starts the worker and clears the crash",
      async () => {
        writeSource(project, "w", "boom.ts", boomSource(false));
        await waitFor(
          async () => (await get(server, "/w")).text === "w1",
          10_000,
          "the fixed worker",
        );
        await waitFor(
          () =>
            events.list.some((e) =>
              e.type === "ok" && e.data.kind === "crash" &&
              e.data.worker === "w"
            ),
          5000,
          "the crash cleared",
        );
        const w = (await server.status()).workers.find((x) => x.name === "w")!;
        assert.equal(w.status, "healthy");
        assert.equal(w.last_error, null);
      },
    );

    await t.step(
      "a reload that crashes keeps the old instance and shows the crash",
      async () => {
        events.list.length = 0;
        Deno.writeTextFileSync(main, mainSource(true, "w2"));
        writeSource(project, "w", "boom.ts", boomSource(true));
        const crash = await waitFor(
          () =>
            events.list.find((e) =>
              e.type === "error" && e.data.kind === "crash"
            ),
          10_000,
          "a crash event after the reload",
        );
        assert.equal(crash.data.line, 4);
        assert.equal(
          (await get(server, "/w")).text,
          "w1",
          "the old instance serves",
        );
        await waitFor(
          async () =>
            /kaboom at start/.test(
              (await server.status()).workers.find((x) => x.name === "w")
                ?.last_error ?? "",
            ),
          5000,
          "last_error with the crash",
        );
        // Fixed again: the new version serves and the overlay is cleared.
        writeSource(project, "w", "boom.ts", boomSource(false));
        await waitFor(
          async () => (await get(server, "/w")).text === "w2",
          10_000,
          "the fixed reload",
        );
        await waitFor(
          () =>
            events.list.some((e) => e.type === "ok" && e.data.kind === "crash"),
          5000,
          "the crash cleared after the reload",
        );
      },
    );
  } finally {
    events.close();
    await server.stop();
    project.cleanup();
  }
});

Deno.test("a new worker folder answers a live-reloading building page, then its content, with no ERROR", async () => {
  const project = makeProject({ workers: {}, deploymentYaml: DEBOUNCE });
  writeSource(project, "a", "main.ts", plainWorker(`"a1"`));
  const server = await startServer(project, ["--mode", "dev"]);
  const events = await subscribe(server);
  try {
    const before = server.logs().length;
    // A worker that takes a while to get ready, so its building page can be seen.
    writeSource(
      project,
      "fresh",
      "main.ts",
      plainWorker(`"fresh1"`, "await new Promise((r) => setTimeout(r, 1500));"),
    );
    const seen: string[] = [];
    const page = await waitFor(
      async () => {
        const res = await fetch(`${server.base}/fresh`);
        const text = await res.text();
        const line = `${res.status} ${text.slice(0, 60).trim()}`;
        if (seen.at(-1) !== line) seen.push(line);
        return res.headers.get("x-tq-building") === "fresh"
          ? { status: res.status, text }
          : undefined;
      },
      10_000,
      "the building page",
    ).catch((err) => {
      throw new Error(
        `${err.message}; /fresh answered, in order:\n${seen.join("\n")}\n` +
          server.logs().slice(before),
      );
    });
    assert.equal(page.status, 200);
    assert.match(page.text, /Building <code>fresh<\/code>/);
    assert.match(page.text, /\/_tq\/livereload\.js/);
    await waitFor(
      async () => (await get(server, "/fresh")).text === "fresh1",
      15_000,
      "the new worker's content",
    );
    await waitFor(
      () => events.list.some((e) => e.type === "reload"),
      5000,
      "the reload event for the building page",
    );
    const after = server.logs().slice(before);
    assert.doesNotMatch(after, / ERROR /);
    assert.equal((await get(server, "/a")).text, "a1");
  } finally {
    events.close();
    await server.stop();
    project.cleanup();
  }
});

Deno.test("a rejected config edit reaches /_tq/events until the file is fixed", async () => {
  const project = makeProject({ workers: {}, deploymentYaml: DEBOUNCE });
  writeSource(project, "a", "main.ts", plainWorker(`"a1"`));
  const server = await startServer(project, ["--mode", "dev"]);
  const events = await subscribe(server);
  const file = `${project.root}/config/server.yaml`;
  const good = Deno.readTextFileSync(file);
  try {
    Deno.writeTextFileSync(
      file,
      good.replace(/port_range_start: \d+/, "port_range_start: lots"),
    );
    const rejected = await waitFor(
      () =>
        events.list.find((e) => e.type === "error" && e.data.kind === "config"),
      10_000,
      "the config error event",
    );
    assert.match(String(rejected.data.file), /server\.yaml$/);
    assert.equal(typeof rejected.data.line, "number");
    assert.match(String(rejected.data.message), /port_range_start/);
    assert.equal((await get(server, "/a")).text, "a1", "still serving");
    Deno.writeTextFileSync(file, good);
    await waitFor(
      () =>
        events.list.some((e) => e.type === "ok" && e.data.kind === "config"),
      10_000,
      "the config error cleared",
    );
  } finally {
    events.close();
    await server.stop();
    project.cleanup();
  }
});

Deno.test("a type error is a warning on /_tq/events after the new build serves, never holding up the reload", async () => {
  const project = makeProject({ workers: {}, deploymentYaml: DEBOUNCE });
  const main = writeSource(project, "t", "main.ts", plainWorker(`"t1"`));
  const server = await startServer(project, ["--mode", "dev"]);
  const events = await subscribe(server);
  try {
    const wrote = performance.now();
    Deno.writeTextFileSync(
      main,
      plainWorker(
        "`t2 ${n}`",
        '// The type error is on line 2, column 7.\nconst n: number = "x";',
      ),
    );
    await waitFor(
      async () => (await get(server, "/t")).text === "t2 x",
      10_000,
      "the edit served despite its type error",
    );
    const servedAt = performance.now();
    const warning = await waitFor(
      () =>
        events.list.find((e) =>
          e.type === "warning" && e.data.kind === "types"
        ),
      30_000,
      "the type warning",
    );
    const reload = events.list.find((e) => e.type === "reload");
    assert.ok(reload, "the page was reloaded");
    assert.ok(reload.at < warning.at, "the reload came before the check ended");
    assert.ok(servedAt < warning.at, "served before the check ended");
    assert.ok(servedAt - wrote < 5000, "the reload was not held up");
    assert.equal(warning.data.worker, "t");
    assert.match(String(warning.data.file), /\/workers\/t\/src\/main\.ts$/);
    assert.equal(warning.data.line, 2);
    assert.match(String(warning.data.message), /TS2322/);
    await server.waitForLog(/WARN {2}type errors .*worker=t/);
    const t = (await server.status()).workers.find((x) => x.name === "t")!;
    assert.match(t.last_error ?? "", /Type errors at .*main\.ts:2:7/);
    // Fixed: the warning is withdrawn.
    Deno.writeTextFileSync(main, plainWorker(`"t3"`));
    await waitFor(
      () => events.list.some((e) => e.type === "ok" && e.data.kind === "types"),
      30_000,
      "the warning withdrawn",
    );
  } finally {
    events.close();
    await server.stop();
    project.cleanup();
  }
});
