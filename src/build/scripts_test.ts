// scripts/build-dev.sh, scripts/build-prod.sh and compile.sh, run as processes.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  fixtureProject,
  REPO_ROOT,
  run,
  targetOf,
  tempFiles,
} from "./_testing.ts";

const DENORT_BIN = Deno.env.get("DENORT_BIN");
const ELF = [0x7f, 0x45, 0x4c, 0x46];

async function startsWithElf(path: string): Promise<boolean> {
  const bytes = await Deno.readFile(path);
  return ELF.every((b, i) => bytes[i] === b);
}

/** A project holding a copy of compile.sh and a tiny main.ts, so the test compiles little. */
async function compileProject(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "tq-compile-" });
  await Deno.copyFile(join(REPO_ROOT, "compile.sh"), join(dir, "compile.sh"));
  await Deno.chmod(join(dir, "compile.sh"), 0o755);
  await Deno.writeTextFile(join(dir, "deno.json"), "{}\n");
  await Deno.writeTextFile(
    join(dir, "main.ts"),
    'console.log("tqserver fixture", Deno.args.join(" "));\n',
  );
  return dir;
}

Deno.test("scripts/build-dev.sh bundles every TypeScript worker of --root", async () => {
  const root = await fixtureProject();
  try {
    const out = await run(join(REPO_ROOT, "scripts", "build-dev.sh"), [
      "--root",
      root,
    ]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(
      out.stderr,
      /\] alpha \d+ ms worker=alpha ms=\d+ status=built/,
    );
    assert.match(out.stderr, /\] beta \d+ ms worker=beta ms=\d+ status=built/);
    for (const name of ["alpha", "beta"]) {
      const target = targetOf(root, name);
      const ran = await run(target.binPath, [], { cwd: target.dir });
      assert.match(ran.stdout, new RegExp(`^hello from ${name}`));
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name:
    "scripts/build-prod.sh compiles standalone workers, or says how to build without the runtime download",
  ignore: DENORT_BIN !== undefined,
  async fn() {
    const root = await fixtureProject();
    const beta = targetOf(root, "beta");
    try {
      const out = await run(join(REPO_ROOT, "scripts", "build-prod.sh"), [
        "--root",
        root,
        "beta",
      ]);
      if (out.code === 0) {
        // deno compile could get its runtime here.
        assert.ok(await startsWithElf(beta.binPath));
        return;
      }
      assert.equal(out.code, 1, out.stderr);
      assert.match(out.stderr, /build of "beta" failed/);
      assert.match(out.stderr, /could not get its runtime \(denort\)/);
      assert.match(out.stderr, /DENORT_BIN=\/path\/to\/denort/);
      await assert.rejects(Deno.stat(beta.binPath));
      // The way out the message gives works.
      const bundled = await run(join(REPO_ROOT, "scripts", "build-prod.sh"), [
        "--root",
        root,
        "--format",
        "bundle",
        "beta",
      ]);
      assert.equal(bundled.code, 0, bundled.stderr);
      const ran = await run(beta.binPath, [], { cwd: beta.dir });
      assert.match(ran.stdout, /^hello from beta/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "compile.sh without the runtime download exits 1 saying so and how to fix it",
  ignore: DENORT_BIN !== undefined,
  async fn() {
    const dir = await compileProject();
    const target = Deno.build.target;
    try {
      const out = await run(join(dir, "compile.sh"), ["--target", target]);
      const bin = join(dir, "server", "bin");
      if (out.code === 0) {
        // This machine can download (or has cached) denort.
        const ran = await run(join(bin, "tqserver"), ["x"]);
        assert.equal(ran.stdout, "tqserver fixture x\n");
        return;
      }
      assert.equal(out.code, 1, out.stderr);
      assert.match(
        out.stderr,
        new RegExp(
          `deno compile could not download its runtime \\(denort for ${target}\\)`,
        ),
      );
      assert.match(out.stderr, /DENORT_BIN=\/path\/to\/denort/);
      assert.match(out.stderr, /deno task start/);
      assert.deepEqual(await tempFiles(bin), []);
      await assert.rejects(Deno.stat(join(bin, "tqserver")));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "compile.sh with DENORT_BIN writes a runnable server/bin/tqserver",
  ignore: !DENORT_BIN,
  async fn() {
    const dir = await compileProject();
    try {
      const out = await run(join(dir, "compile.sh"), [], {
        timeoutMs: 120_000,
      });
      assert.equal(out.code, 0, out.stderr);
      const ran = await run(join(dir, "server", "bin", "tqserver"), ["y"]);
      assert.equal(ran.stdout, "tqserver fixture y\n");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("compile.sh rejects unknown arguments and a DENORT_BIN that does not exist", async () => {
  const dir = await compileProject();
  try {
    const bad = await run(join(dir, "compile.sh"), ["--output", "x"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown argument "--output"/);
    const missing = await run(join(dir, "compile.sh"), [], {
      env: { DENORT_BIN: join(dir, "no-denort") },
    });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /DENORT_BIN=".*no-denort" does not exist/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
