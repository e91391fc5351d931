import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  EsbuildEmitter,
  esbuildError,
  loadEsbuild,
} from "./esbuild_emitter.ts";
import { findProject } from "./_files.ts";
import { REPO_ROOT, run } from "./_testing.ts";

const esbuild = await loadEsbuild();

/**
 * A worker folder in a temporary project that has copies of the repository's
 * deno.json and lock (so `hono` resolves as it does here), removed afterwards.
 * Never inside the repository: a `deno task dev` running there watches it.
 */
async function fixture(files: Record<string, string>) {
  const root = await Deno.makeTempDir({ prefix: "tq-esbuild-" });
  for (const name of ["deno.json", "deno.lock"]) {
    await Deno.copyFile(join(REPO_ROOT, name), join(root, name));
  }
  const dir = join(root, "w");
  await Deno.mkdir(dir);
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(dirname(join(dir, path)), { recursive: true });
    await Deno.writeTextFile(join(dir, path), text);
  }
  await Deno.mkdir(join(dir, "bin"));
  const target = {
    name: "w",
    entry: join(dir, "src", "main.ts"),
    binPath: join(dir, "bin", "w"),
    dir,
  };
  return {
    target,
    project: await findProject(target.entry, join(root, "deno.json")),
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
}

Deno.test({
  name:
    "EsbuildEmitter writes a launcher and bin/{name}.js whose stack traces name src/ lines",
  ignore: !esbuild,
  fn: async () => {
    const { target, project, cleanup } = await fixture({
      "src/main.ts": [
        'import { Hono } from "hono";',
        'import { fail } from "./lib.ts";',
        "interface Shape { n: number }",
        "const s: Shape = { n: new Hono() ? 1 : 0 };",
        "console.log(`main ${s.n} ${import.meta.main}`);",
        "fail();",
        "",
      ].join("\n"),
      "src/lib.ts": [
        "// line 1",
        "export function fail(): never {",
        '  throw new Error("failing on purpose");',
        "}",
        "",
      ].join("\n"),
    });
    const emitter = new EsbuildEmitter(esbuild!, {
      permissions: ["--allow-all"],
    });
    try {
      const tmp = `${target.binPath}.tmp-test`;
      assert.equal(await emitter.emit(target, tmp, project), undefined);
      await Deno.rename(tmp, target.binPath);
      const launcher = await Deno.readTextFile(target.binPath);
      assert.match(launcher, /^#!\/bin\/sh\n/);
      assert.match(launcher, /--config=\S*deno\.json/);
      assert.match(launcher, /"\$0\.js"/);
      assert.equal(await emitter.sameFlags(target, project), true);
      const bundle = await Deno.readTextFile(`${target.binPath}.js`);
      assert.match(bundle, /from "hono"/, "packages stay imports");
      assert.match(bundle, /sourceMappingURL=data:application\/json;base64,/);
      const out = await run(target.binPath, [], { cwd: target.dir });
      // Deno colours a trace's file names unless NO_COLOR is set.
      // deno-lint-ignore no-control-regex
      out.stderr = out.stderr.replace(/\x1b\[[0-9;]*m/g, "");
      assert.equal(out.code, 1);
      assert.match(out.stdout, /^main 1 true/);
      assert.match(out.stderr, /failing on purpose/);
      assert.match(out.stderr, /\/src\/lib\.ts:3:9/);
      assert.doesNotMatch(out.stderr, /bin\/w(\.js)?:\d+/);
      // The graph it saw, and how a standby runs it.
      const inputs = emitter.inputs("w")!;
      assert.ok(inputs.includes(target.entry));
      assert.ok(inputs.includes(join(target.dir, "src", "lib.ts")));
      const info = emitter.launchInfo(target.binPath)!;
      assert.deepEqual(info.externals, ["hono"]);
      assert.equal(info.module, `${target.binPath}.js`);
      assert.equal(info.args[0], "deno");
    } finally {
      await emitter.close();
      await cleanup();
    }
  },
});

Deno.test({
  name:
    "EsbuildEmitter reports a syntax error with file, line, column and a code frame",
  ignore: !esbuild,
  fn: async () => {
    const { target, project, cleanup } = await fixture({
      "src/main.ts": "const ok = 1;\nconst broken = 1 +;\nconsole.log(ok);\n",
    });
    const emitter = new EsbuildEmitter(esbuild!, {
      permissions: ["--allow-all"],
    });
    try {
      const error = await emitter.emit(
        target,
        `${target.binPath}.tmp`,
        project,
      );
      assert.ok(error);
      assert.equal(error.file, target.entry);
      assert.equal(error.line, 2);
      assert.equal(error.column, 19);
      assert.match(error.message, /2 \| const broken = 1 \+;\n\s+\^/);
    } finally {
      await emitter.close();
      await cleanup();
    }
  },
});

Deno.test("esbuildError() copes with errors that carry no location", () => {
  assert.deepEqual(esbuildError(new Error("service stopped"), "/"), {
    message: "esbuild failed: service stopped",
  });
  assert.deepEqual(
    esbuildError({ errors: [{ text: "no input files" }] }, "/"),
    { message: "no input files" },
  );
});

Deno.test({
  name:
    "EsbuildEmitter fails a bundle that runs past timeoutMs, naming the entry and the key, and builds again after",
  ignore: !esbuild || Deno.build.os === "windows",
  fn: async () => {
    const { target, project, cleanup } = await fixture({
      "src/main.ts": 'import "./stuck.ts";\nconsole.log("main");\n',
    });
    // A FIFO nobody writes: esbuild's read of it never ends.
    const fifo = join(target.dir, "src", "stuck.ts");
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(mk.success, "mkfifo failed");
    const emitter = new EsbuildEmitter(esbuild!, {
      permissions: ["--allow-all"],
      timeoutMs: 300,
      timeoutKey: "deployment.dev.build.timeout_ms",
    });
    let writer: Deno.FsFile | undefined;
    try {
      const started = performance.now();
      const err = await emitter.emit(target, `${target.binPath}.tmp`, project);
      const ms = performance.now() - started;
      assert.match(
        err?.message ?? "",
        /^esbuild bundling .*main\.ts ran longer than 300 ms and was cancelled \(deployment\.dev\.build\.timeout_ms\)$/,
      );
      assert.ok(ms >= 290 && ms < 10_000, `took ${ms} ms`);
      // Unblock the stuck read, then a fixed source builds on a new context.
      writer = await Deno.open(fifo, { write: true });
      writer.close();
      writer = undefined;
      await Deno.remove(fifo);
      await Deno.writeTextFile(fifo, "export {};\n");
      assert.equal(
        await emitter.emit(target, `${target.binPath}.tmp`, project),
        undefined,
      );
      assert.match(await Deno.readTextFile(`${target.binPath}.js`), /"main"/);
    } finally {
      writer?.close();
      await emitter.close();
      await cleanup();
    }
  },
});
