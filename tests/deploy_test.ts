// End-to-end: scripts/deploy.sh to a local-path target that runs a real tqserver in prod mode.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeProject,
  REPO,
  startServer,
  waitFor,
  writeEchoBinary,
} from "./_helpers.ts";
import { startLoad } from "./_load.ts";

const hasRsync = (() => {
  try {
    return new Deno.Command("rsync", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();

async function deploy(root: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(join(REPO, "scripts", "deploy.sh"), {
    args: ["--root", root, ...args],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `deploy ${args.join(" ")} failed:\n${text}`);
  return text;
}

Deno.test({
  name:
    "deploy.sh to a local directory ships what changed, reloads with no failed request, and rolls back",
  ignore: !hasRsync,
  fn: async () => {
    const source = makeProject({ workers: { index: { TAG: "v1" } } });
    const target = Deno.makeTempDirSync({ prefix: "tq-target-" });
    Deno.writeTextFileSync(
      join(source.root, "config", "deployment.yaml"),
      `deployment:\n  targets:\n    local:\n      path: ${target}\n      admin_url: http://127.0.0.1:${source.adminPort}\n`,
    );
    const pub = join(source.root, "workers", "index", "public");
    Deno.writeTextFileSync(join(pub, "same.txt"), "unchanged\n");
    Deno.mkdirSync(join(source.root, "workers", "index", "src"));
    Deno.writeTextFileSync(
      join(source.root, "workers", "index", "src", "notes.ts"),
      "// never deployed\n",
    );
    let server;
    try {
      await deploy(source.root, "local");
      assert.equal(
        Deno.readTextFileSync(join(target, "workers/index/public/same.txt")),
        "unchanged\n",
      );
      assert.throws(
        () => Deno.statSync(join(target, "workers/index/src")),
        Deno.errors.NotFound,
      );
      server = await startServer({ ...source, root: target });
      const tag = async () =>
        (await (await fetch(`${server!.base}/x`)).json()).tag;
      assert.equal(await tag(), "v1");

      const sameBefore = Deno.statSync(
        join(target, "workers/index/public/same.txt"),
      );
      writeEchoBinary(source.root, "index", { TAG: "v2" });
      Deno.writeTextFileSync(join(pub, "new.txt"), "new\n");
      const load = startLoad(`${server.base}/x`, { concurrency: 4 });
      await waitFor(() => load.count() > 50, 5000, "load");
      await deploy(source.root, "--reload", "local", "index");
      assert.equal(await tag(), "v2");
      await waitFor(() => load.count() > 300, 10000, "more load");
      const result = await load.stop();
      assert.equal(result.failed, 0, result.errors.join("\n"));
      assert.deepEqual(result.tags, ["v1", "v2"]);
      const sameAfter = Deno.statSync(
        join(target, "workers/index/public/same.txt"),
      );
      assert.equal(
        sameAfter.ino,
        sameBefore.ino,
        "an unchanged file was rewritten",
      );
      assert.equal(sameAfter.mtime?.getTime(), sameBefore.mtime?.getTime());
      assert.equal(
        Deno.readTextFileSync(join(target, "workers/index/public/new.txt")),
        "new\n",
      );
      // The replaced binary is kept aside for --rollback, not beside the live one.
      const id = Deno.readTextFileSync(join(target, ".tqdeploy", "current"))
        .trim();
      assert.match(
        Deno.readTextFileSync(
          join(
            target,
            ".tqdeploy/releases",
            id,
            "backup/workers/index/bin/index",
          ),
        ),
        /TAG='v1'/,
      );
      assert.throws(
        () => Deno.statSync(join(target, "workers/index/bin/index.prev")),
        Deno.errors.NotFound,
      );

      await deploy(source.root, "--rollback", "local");
      assert.equal(await tag(), "v1");
      assert.throws(
        () => Deno.statSync(join(target, "workers/index/public/new.txt")),
        Deno.errors.NotFound,
        "a file the deploy created is gone after its rollback",
      );

      const dry = await deploy(source.root, "--dry-run", "local");
      assert.match(dry, /: 2 change\(s\)/);
      assert.match(dry, /updated workers\/index\/bin\/index/);
    } finally {
      await server?.stop();
      source.cleanup();
      Deno.removeSync(target, { recursive: true });
    }
  },
});
