import assert from "node:assert/strict";
import { join } from "node:path";
import { runBuildCli } from "./cli.ts";
import { fixtureProject, recordingLogger, run, targetOf } from "./_testing.ts";

function cli(root: string, env: Record<string, string> = {}) {
  const log = recordingLogger();
  let out = "";
  let err = "";
  return {
    log,
    out: () => out,
    err: () => err,
    run: (args: string[]) =>
      runBuildCli(args, {
        cwd: root,
        env: (name) => env[name],
        logger: log,
        stdout: (text) => out += text,
        stderr: (text) => err += text,
      }),
  };
}

Deno.test("build CLI builds the TypeScript workers of a project, then finds them up to date", async (t) => {
  const root = await fixtureProject();
  try {
    await t.step("only the named workers are built", async () => {
      const c = cli(root);
      assert.equal(await c.run(["beta"]), 0, c.err());
      const beta = targetOf(root, "beta");
      const out = await run(beta.binPath, [], { cwd: beta.dir });
      assert.match(out.stdout, /^hello from beta/);
      await assert.rejects(Deno.stat(targetOf(root, "alpha").binPath));
    });

    await t.step(
      "every worker is built in dev mode with the bundle format",
      async () => {
        const c = cli(root);
        assert.equal(await c.run(["--root", root]), 0, c.err());
        const lines = c.log.records.filter((r) => /^\[\d\/2\] /.test(r.msg));
        assert.deepEqual(
          lines.map((r) => `${r.fields.worker} ${r.fields.status}`).sort(),
          ["alpha built", "beta up-to-date"],
        );
        assert.match(lines[0]!.msg, /^\[1\/2\] (alpha|beta) \d+ ms$/);
        const start = c.log.records.find((r) => r.msg === "building workers");
        assert.equal(start?.fields.mode, "dev");
        assert.equal(start?.fields.format, "bundle");
      },
    );

    await t.step("--force rebuilds fresh workers", async () => {
      const c = cli(root);
      assert.equal(await c.run(["--force", "alpha"]), 0, c.err());
      assert.ok(c.log.records.some((r) => r.fields.status === "built"));
    });

    await t.step("a build error exits 1 and prints where it is", async () => {
      await Deno.writeTextFile(
        join(root, "workers", "alpha", "src", "version.ts"),
        "export const VERSION = ;\n",
      );
      const c = cli(root);
      assert.equal(await c.run([]), 1);
      assert.match(
        c.err(),
        /build of "alpha" failed\n {2}workers\/alpha\/src\/version\.ts:1:\d+\n {2}SyntaxError: Expression expected/,
      );
    });

    await t.step("deployment.dev.build settings choose the flags", async () => {
      await Deno.mkdir(join(root, "config"));
      await Deno.writeTextFile(
        join(root, "config", "deployment.yaml"),
        "deployment:\n  dev:\n    build:\n      permissions: [--allow-env]\n",
      );
      const c = cli(root);
      assert.equal(await c.run(["beta"]), 0, c.err());
      const head = (await Deno.readTextFile(targetOf(root, "beta").binPath))
        .split("\n")[0];
      assert.equal(
        head,
        "#!/usr/bin/env -S deno run --no-config --allow-env --unstable-net",
      );
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("build CLI exits 2 on bad usage or config", async (t) => {
  const root = await fixtureProject();
  try {
    await t.step("--help prints the usage and exits 0", async () => {
      const c = cli(root);
      assert.equal(await c.run(["--help"]), 0);
      assert.match(c.out(), /^Usage: deno task build/);
    });
    for (
      const [args, message] of [
        [["--bogus"], /Unknown option '--bogus'/],
        [["--format", "zip"], /Invalid --format "zip"/],
        [["--mode", "staging"], /Invalid --mode "staging"/],
        [
          ["gamma"],
          /Unknown worker "gamma": the TypeScript and Go workers are "alpha", "beta"/,
        ],
      ] as const
    ) {
      await t.step(`${args.join(" ")} exits 2`, async () => {
        const c = cli(root);
        assert.equal(await c.run([...args]), 2);
        assert.match(c.err(), message);
      });
    }
    await t.step("DEPLOYMENT_MODE with a bad value exits 2", async () => {
      const c = cli(root, { DEPLOYMENT_MODE: "qa" });
      assert.equal(await c.run([]), 2);
      assert.match(c.err(), /Invalid DEPLOYMENT_MODE "qa"/);
    });
    await t.step("a bad config file exits 2 naming file and line", async () => {
      await Deno.mkdir(join(root, "config"));
      await Deno.writeTextFile(
        join(root, "config", "deployment.yaml"),
        "deployment:\n  dev:\n    build:\n      format: zip\n",
      );
      const c = cli(root);
      assert.equal(await c.run([]), 2);
      assert.match(c.err(), /config\/deployment\.yaml:4: .*format/);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
