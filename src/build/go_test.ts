import assert from "node:assert/strict";
import { join } from "node:path";
import { GoBuilder, parseGoError } from "./go.ts";
import type { BuildTarget } from "./target.ts";

/** True when a Go toolchain is on PATH; the tests that build skip without it. */
const HAS_GO = await (async () => {
  try {
    return (await new Deno.Command("go", { args: ["version"] }).output())
      .success;
  } catch {
    return false;
  }
})();
if (!HAS_GO) {
  console.log("Go toolchain not found on PATH: skipping the go build tests");
}

const MAIN = (word: string) =>
  `package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("${word}")\n}\n`;

async function goWorker(
  files: Record<string, string>,
): Promise<{ root: string; target: BuildTarget }> {
  const root = await Deno.makeTempDir({ prefix: "tq_go_" });
  const dir = join(root, "workers", "hello");
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(dir, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, path), text);
  }
  return {
    root,
    target: {
      name: "hello",
      entry: join(dir, "src", "main.go"),
      binPath: join(dir, "bin", "hello"),
      dir,
    },
  };
}

async function output(path: string): Promise<string> {
  const out = await new Deno.Command(path, { stdin: "null" }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

async function setMtime(path: string, ms: number): Promise<void> {
  await Deno.utime(path, ms / 1000, ms / 1000);
}

Deno.test("parseGoError() takes file and line from go's output, without the package header", () => {
  const error = parseGoError(
    "# example.com/w/src\nsrc/main.go:7:2: undefined: nope\nsrc/main.go:8:2: undefined: other\n",
    "/p/workers/w",
  );
  assert.deepEqual(error, {
    message:
      "src/main.go:7:2: undefined: nope\nsrc/main.go:8:2: undefined: other",
    file: "/p/workers/w/src/main.go",
    line: 7,
    column: 2,
  });
  assert.deepEqual(
    parseGoError("go: go.mod file not found in current directory\n", "/p"),
    { message: "go: go.mod file not found in current directory" },
  );
});

Deno.test("GoBuilder without Go on PATH fails with the worker's name and how to install Go", async () => {
  const { root, target } = await goWorker({ "src/main.go": MAIN("hi") });
  try {
    const builder = new GoBuilder({ goPath: join(root, "no-such-go") });
    const result = await builder.build(target);
    assert.equal(result.status, "failed");
    assert.match(
      result.error?.message ?? "",
      /^Worker "hello" has src\/main\.go but Go is not installed: install Go .*apt-get install golang-go/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("GoBuilder names the command, folder and timeout key when go build runs too long", async () => {
  const { root, target } = await goWorker({ "src/main.go": MAIN("hi") });
  try {
    const seen: number[] = [];
    const builder = new GoBuilder({
      timeoutMs: 50,
      timeoutKey: "deployment.dev.build.timeout_ms",
      run: (_args, { timeoutMs }) => {
        seen.push(timeoutMs);
        return Promise.resolve({
          success: false,
          timedOut: true,
          stdout: "",
          stderr: "",
        });
      },
    });
    const result = await builder.build(target);
    assert.deepEqual(seen, [50]);
    assert.equal(result.status, "failed");
    assert.match(
      result.error?.message ?? "",
      /^"go build -o .* \.\/src" in ".*workers\/hello" did not finish within 50 ms \(deployment\.dev\.build\.timeout_ms\)/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name:
    "GoBuilder builds ./src incrementally and atomically, with or without a go.mod",
  ignore: !HAS_GO,
  fn: async (t) => {
    const { root, target } = await goWorker({
      "src/main.go": MAIN("one"),
      "src/util/doc.go": "package util\n",
    });
    const writes: string[] = [];
    const builder = new GoBuilder({ onWrite: (p) => writes.push(p) });
    try {
      await t.step("without go.mod: GOPATH mode", async () => {
        const result = await builder.build(target);
        assert.equal(result.status, "built", result.error?.message);
        assert.equal(await output(target.binPath), "one");
        assert.deepEqual(writes, [target.binPath]);
        const ignore = await Deno.readTextFile(
          join(target.dir, "bin", ".gitignore"),
        );
        assert.match(ignore, /^\*$/m);
      });
      await t.step("a second build finds it fresh", async () => {
        assert.equal((await builder.build(target)).status, "fresh");
        // A new builder (a restarted server) reads the flags from the binary.
        assert.equal((await new GoBuilder().build(target)).status, "fresh");
      });
      await t.step(
        "any .go under src/, at any depth, makes it stale",
        async () => {
          const bin = (await Deno.stat(target.binPath)).mtime!.getTime();
          await setMtime(join(target.dir, "src/util/doc.go"), bin + 2000);
          assert.equal(await builder.isStale(target), true);
          assert.equal((await builder.build(target)).status, "built");
        },
      );
      await t.step(
        "a go.mod appears: module mode, and go.mod counts",
        async () => {
          await Deno.writeTextFile(
            join(target.dir, "go.mod"),
            "module example.com/hello\n\ngo 1.19\n",
          );
          assert.equal(await builder.isStale(target), true);
          await Deno.writeTextFile(target.entry, MAIN("two"));
          assert.equal((await builder.build(target)).status, "built");
          assert.equal(await output(target.binPath), "two");
          const bin = (await Deno.stat(target.binPath)).mtime!.getTime();
          await setMtime(join(target.dir, "go.mod"), bin + 2000);
          assert.equal(await builder.isStale(target), true);
          await builder.build(target);
          // Back in the past, so that only the flags differ below.
          for (const file of ["go.mod", "src/util/doc.go", "src/main.go"]) {
            await setMtime(join(target.dir, file), bin - 10_000);
          }
          assert.equal(await builder.isStale(target), false);
        },
      );
      await t.step("other -ldflags make it stale and are used", async () => {
        const strip = new GoBuilder({ ldflags: "-s -w" });
        assert.equal(await strip.isStale(target), true);
        assert.equal((await strip.build(target)).status, "built");
        const info = await new Deno.Command("go", {
          args: ["version", "-m", target.binPath],
        }).output();
        assert.match(
          new TextDecoder().decode(info.stdout),
          /-ldflags="-s -w"/,
        );
        assert.equal(await strip.isStale(target), false);
        assert.equal(await builder.isStale(target), true, "built without");
      });
      await t.step(
        "a compile error keeps the old binary byte for byte",
        async () => {
          const before = await Deno.readFile(target.binPath);
          await Deno.writeTextFile(
            target.entry,
            "package main\n\nfunc main() {\n\tundefinedThing()\n}\n",
          );
          const result = await builder.build(target);
          assert.equal(result.status, "failed");
          assert.equal(result.error?.file, target.entry);
          assert.equal(result.error?.line, 4);
          assert.match(
            result.error?.message ?? "",
            /undefined: undefinedThing/,
          );
          assert.deepEqual(await Deno.readFile(target.binPath), before);
          const left = [...Deno.readDirSync(join(target.dir, "bin"))]
            .map((e) => e.name).sort();
          assert.deepEqual(left, [".gitignore", "hello"], "no temp file left");
        },
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
