import assert from "node:assert/strict";
import { join } from "node:path";
import { BIN_GITIGNORE, Builder, type CommandRunner } from "./builder.ts";
import { runCommand } from "./_run.ts";
import { waitFor } from "../../tests/_helpers.ts";
import {
  fixtureProject,
  recordingLogger,
  run,
  targetOf,
  tempFiles,
} from "./_testing.ts";

/** A runner that counts how many `deno bundle` runs overlap. */
function overlapCounter(): { run: CommandRunner; max: () => number } {
  let now = 0;
  let max = 0;
  return {
    run: async (command, args, options) => {
      const bundle = args[0] === "bundle";
      if (bundle) max = Math.max(max, ++now);
      try {
        return await runCommand(command, args, options);
      } finally {
        if (bundle) now--;
      }
    },
    max: () => max,
  };
}

async function setMtime(path: string, ms: number): Promise<void> {
  await Deno.utime(path, ms / 1000, ms / 1000);
}

Deno.test("Builder bundles workers into runnable binaries, incrementally and atomically", async (t) => {
  const root = await fixtureProject();
  const alpha = targetOf(root, "alpha");
  const beta = targetOf(root, "beta");
  const shared = join(root, "shared", "greet.ts");
  const version = join(alpha.dir, "src", "version.ts");
  const log = recordingLogger();
  const counter = overlapCounter();
  const writes: string[] = [];
  const builder = new Builder({
    logger: log,
    run: counter.run,
    onWrite: (path) => writes.push(path),
  });
  try {
    await t.step(
      "buildAll() builds two workers in parallel into binaries that run",
      async () => {
        const results = await builder.buildAll([alpha, beta]);
        assert.deepEqual(results.map((r) => [r.name, r.status]), [
          ["alpha", "built"],
          ["beta", "built"],
        ]);
        assert.equal(counter.max(), 2, "both bundles ran at the same time");
        for (const target of [alpha, beta]) {
          const info = await Deno.stat(target.binPath);
          assert.equal(info.mode! & 0o777, 0o755);
          const head = (await Deno.readTextFile(target.binPath)).split("\n")[0];
          assert.equal(
            head,
            "#!/usr/bin/env -S deno run --no-config --allow-all --unstable-net",
          );
          const out = await run(target.binPath, [], { cwd: target.dir });
          assert.equal(out.code, 0, out.stderr);
          assert.match(
            out.stdout,
            new RegExp(
              `^hello from ${target.name} net=granted unstable-net=true`,
            ),
          );
          assert.deepEqual(await tempFiles(join(target.dir, "bin")), []);
          // bin/ says it is build output, so git never tracks it.
          assert.equal(
            await Deno.readTextFile(join(target.dir, "bin", ".gitignore")),
            BIN_GITIGNORE,
          );
        }
        assert.deepEqual(writes.sort(), [alpha.binPath, beta.binPath]);
        const progress = log.records.filter((r) => r.fields.status === "built");
        assert.deepEqual(progress.map((r) => r.fields.worker).sort(), [
          "alpha",
          "beta",
        ]);
        assert.ok(progress.every((r) => typeof r.fields.ms === "number"));
      },
    );

    await t.step(
      "a second build is fresh and does not rewrite the binary",
      async () => {
        const before = await Deno.stat(alpha.binPath);
        const result = await builder.build(alpha);
        assert.equal(result.status, "fresh");
        const after = await Deno.stat(alpha.binPath);
        assert.equal(after.mtime?.getTime(), before.mtime?.getTime());
        assert.equal(after.ino, before.ino);
      },
    );

    await t.step(
      "graph() lists the local modules and dependents() the workers importing a file",
      async () => {
        const graph = await builder.graph(alpha);
        for (const file of [alpha.entry, version, shared]) {
          assert.ok(graph.includes(file), `${file} in ${graph.join(", ")}`);
        }
        assert.deepEqual(builder.dependents(shared).sort(), ["alpha", "beta"]);
        assert.deepEqual(builder.dependents(version), ["alpha"]);
        assert.deepEqual(builder.dependents(join(root, "deno.json")).sort(), [
          "alpha",
          "beta",
        ]);
        assert.deepEqual(builder.dependents(join(root, "README.md")), []);
      },
    );

    await t.step(
      "touching the shared module makes both workers stale, and a rebuild picks up changes",
      async () => {
        const now = Date.now();
        await setMtime(alpha.binPath, now - 20_000);
        await setMtime(beta.binPath, now - 20_000);
        await setMtime(shared, now - 10_000);
        assert.equal(await builder.isStale(alpha), true);
        assert.equal(await builder.isStale(beta), true);
        await Deno.writeTextFile(version, 'export const VERSION = "2";\n');
        const results = await builder.buildAll([alpha, beta]);
        assert.deepEqual(results.map((r) => r.status), ["built", "built"]);
        const out = await run(alpha.binPath, [], { cwd: alpha.dir });
        assert.match(out.stdout, /version=2$/m);
        assert.equal(await builder.isStale(alpha), false);
      },
    );

    await t.step(
      "a syntax error fails with file and line and leaves the old binary byte-identical",
      async () => {
        const old = await Deno.readFile(alpha.binPath);
        await Deno.writeTextFile(
          version,
          'export const VERSION = "3";\nconst broken = 1 2;\n',
        );
        const result = await builder.build(alpha);
        assert.equal(result.status, "failed");
        assert.equal(result.error?.file, version);
        assert.equal(result.error?.line, 2);
        assert.equal(result.error?.column, 18);
        assert.match(result.error?.message ?? "", /Expected/);
        assert.ok(!(result.error?.message ?? "").includes("\x1b["));
        assert.doesNotMatch(result.error?.message ?? "", /backtrace/i);
        assert.deepEqual(await Deno.readFile(alpha.binPath), old);
        assert.deepEqual(await tempFiles(join(alpha.dir, "bin")), []);
        // Fixing it builds again.
        await Deno.writeTextFile(version, 'export const VERSION = "4";\n');
        assert.equal((await builder.build(alpha)).status, "built");
      },
    );

    await t.step("a new import joins the graph after the rebuild", async () => {
      const extra = join(alpha.dir, "src", "extra.ts");
      await Deno.writeTextFile(extra, 'export const EXTRA = "x";\n');
      await Deno.writeTextFile(
        alpha.entry,
        (await Deno.readTextFile(alpha.entry)) +
          'import { EXTRA } from "./extra.ts";\nconsole.log(EXTRA);\n',
      );
      assert.equal((await builder.build(alpha)).status, "built");
      assert.deepEqual(builder.dependents(extra), ["alpha"]);
    });

    await t.step(
      "other permissions make the binary stale and go into its #! line",
      async () => {
        const strict = new Builder({ permissions: ["--allow-env"] });
        assert.equal(await strict.isStale(beta), true);
        assert.equal((await strict.build(beta)).status, "built");
        const out = await run(beta.binPath, [], { cwd: beta.dir });
        assert.equal(out.code, 0, out.stderr);
        assert.match(out.stdout, /^hello from beta net=prompt/);
      },
    );

    await t.step(
      "a #! line too long for the kernel becomes a /bin/sh launcher that runs",
      async () => {
        const names = [
          "TQ_PORT",
          ...Array.from({ length: 20 }, (_, i) => `TQ_VARIABLE_${i}`),
        ];
        const long = new Builder({
          permissions: [`--allow-env=${names.join(",")}`, "--allow-net"],
        });
        assert.equal((await long.build(beta)).status, "built");
        const text = await Deno.readTextFile(beta.binPath);
        assert.ok(text.startsWith("#!/bin/sh\n"), text.slice(0, 200));
        const out = await run(beta.binPath, [], { cwd: beta.dir });
        assert.equal(out.code, 0, out.stderr);
        assert.match(out.stdout, /^hello from beta net=granted/);
      },
    );

    await t.step("a bundled worker serves HTTP on TQ_PORT", async () => {
      const { port } = (() => {
        const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const addr = l.addr as Deno.NetAddr;
        l.close();
        return addr;
      })();
      const child = new Deno.Command(beta.binPath, {
        cwd: beta.dir,
        env: { TQ_PORT: String(port) },
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      let exited = false;
      child.status.then(() => exited = true);
      try {
        // A worker that exited answers "exited": the match below fails at once.
        const body = await waitFor(
          async () =>
            exited
              ? "exited"
              : await (await fetch(`http://127.0.0.1:${port}/`)).text(),
          10_000,
          `the compiled worker to answer on port ${port}`,
        );
        assert.match(body, /^hello from beta/);
      } finally {
        if (!exited) child.kill("SIGTERM");
        await child.status;
      }
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name:
    "Builder compile format builds a standalone binary or says that it needs DENORT_BIN",
  ignore: Deno.env.get("DENORT_BIN") !== undefined,
  async fn() {
    const root = await fixtureProject();
    const beta = targetOf(root, "beta");
    try {
      await Deno.mkdir(join(beta.dir, "bin"));
      await Deno.writeTextFile(beta.binPath, "old binary\n");
      const result = await new Builder({ format: "compile" }).build(beta, {
        force: true,
      });
      if (result.status === "built") {
        // deno compile could download (or had cached) its runtime here.
        const out = await run(beta.binPath, [], { cwd: beta.dir });
        assert.match(out.stdout, /^hello from beta/);
        return;
      }
      assert.equal(result.status, "failed");
      const message = result.error?.message ?? "";
      assert.match(
        message,
        /deno compile could not get its runtime \(denort\)/,
      );
      assert.match(message, /DENORT_BIN=\/path\/to\/denort/);
      assert.match(message, /"bundle"/);
      assert.equal(await Deno.readTextFile(beta.binPath), "old binary\n");
      assert.deepEqual(await tempFiles(join(beta.dir, "bin")), []);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "Builder compile format uses DENORT_BIN to build a standalone binary",
  ignore: !Deno.env.get("DENORT_BIN"),
  async fn() {
    const root = await fixtureProject();
    const beta = targetOf(root, "beta");
    try {
      const result = await new Builder({ format: "compile" }).build(beta);
      assert.equal(result.status, "built", result.error?.message);
      const out = await run(beta.binPath, [], { cwd: beta.dir });
      assert.match(out.stdout, /^hello from beta net=granted/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("Builder compile format names a DENORT_BIN that does not exist", async () => {
  const root = await fixtureProject();
  const previous = Deno.env.get("DENORT_BIN");
  Deno.env.set("DENORT_BIN", join(root, "no-such-denort"));
  try {
    const result = await new Builder({ format: "compile" }).build(
      targetOf(root, "alpha"),
    );
    assert.equal(result.status, "failed");
    assert.match(
      result.error?.message ?? "",
      /^DENORT_BIN ".*no-such-denort" does not exist/,
    );
  } finally {
    if (previous === undefined) Deno.env.delete("DENORT_BIN");
    else Deno.env.set("DENORT_BIN", previous);
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("Builder reports a deno that cannot run as a failed build", async () => {
  const root = await fixtureProject();
  try {
    const result = await new Builder({
      denoPath: join(root, "no-such-deno"),
    }).build(targetOf(root, "alpha"));
    assert.equal(result.status, "failed");
    assert.match(
      result.error?.message ?? "",
      /^Build of "alpha" could not run/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("Builder runs builds of the same worker one after another", async () => {
  const root = await fixtureProject();
  const counter = overlapCounter();
  try {
    const builder = new Builder({ run: counter.run });
    const alpha = targetOf(root, "alpha");
    const results = await Promise.all([
      builder.build(alpha),
      builder.build(alpha),
    ]);
    assert.deepEqual(results.map((r) => r.status), ["built", "fresh"]);
    assert.equal(counter.max(), 1);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("Builder rejects options it cannot honour", () => {
  assert.throws(
    () => new Builder({ format: "zip" as "bundle" }),
    /Invalid build format "zip"/,
  );
  assert.throws(() => new Builder({ parallel: 0 }), RangeError);
  assert.throws(
    () => new Builder({ permissions: ["allow-net"] }),
    /Invalid permission flag "allow-net"/,
  );
});
