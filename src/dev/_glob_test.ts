import assert from "node:assert/strict";
import { globToRegExp } from "./_glob.ts";

Deno.test("globToRegExp matches the watcher's default patterns", () => {
  const cases: [string, string, boolean][] = [
    ["workers/*/src/**", "workers/index/src/main.ts", true],
    ["workers/*/src/**", "workers/index/src/a/b.ts", true],
    ["workers/*/src/**", "workers/index/public/a.css", false],
    ["workers/*/bin/*", "workers/index/bin/index", true],
    ["workers/*/bin/*", "workers/index/bin/x/y", false],
    ["config/*.yaml", "config/server.yaml", true],
    ["config/*.yaml", "config/old/server.yaml", false],
    ["**/.git/**", ".git/index", true],
    ["**/.git/**", "workers/x/.git/HEAD", true],
    ["**/node_modules/**", "node_modules/a/b.js", true],
    ["main.ts", "main.ts", true],
    ["main.ts", "xmain.ts", false],
    ["src/?.ts", "src/a.ts", true],
  ];
  for (const [glob, path, expected] of cases) {
    assert.equal(globToRegExp(glob).test(path), expected, `${glob} vs ${path}`);
  }
});
