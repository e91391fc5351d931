// .gitignore hides build outputs only: never a prebuilt worker's own executable.
import assert from "node:assert/strict";
import { REPO } from "./_helpers.ts";

async function ignored(path: string): Promise<boolean> {
  const out = await new Deno.Command("git", {
    args: ["check-ignore", "--no-index", "-q", path],
    cwd: REPO,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(
    out.code === 0 || out.code === 1,
    new TextDecoder().decode(out.stderr),
  );
  return out.code === 0;
}

Deno.test({
  name:
    ".gitignore ignores TypeScript build outputs but not a prebuilt worker's bin/{name}",
  ignore: !(await new Deno.Command("git", {
    args: ["--version"],
    stdout: "null",
    stderr: "null",
  }).output().then((o) => o.success, () => false)),
  fn: async () => {
    assert.equal(await ignored("workers/index/bin/index"), true);
    assert.equal(await ignored("workers/api_users/bin/api_users"), true);
    assert.equal(await ignored("workers/index/bin/.index.tmp-1234abcd"), true);
    assert.equal(await ignored("server/bin/tqserver"), true);
    // A Python or shell worker is its bin/{name}: it must be committable.
    assert.equal(await ignored("workers/py_hello/bin/py_hello"), false);
    assert.equal(await ignored("workers/sh_tool/bin/sh_tool"), false);
    // A worker's images are its content; browser-test screenshots are not.
    assert.equal(await ignored("workers/index/public/img/logo.png"), false);
    assert.equal(await ignored("screenshots/admin-1280.png"), true);
  },
});
