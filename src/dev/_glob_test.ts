import assert from "node:assert/strict";
import { DEFAULT_WATCH_IGNORE, defaultWatchPaths } from "../config/mod.ts";
import { matchesAny } from "./_glob.ts";

Deno.test("matchesAny() matches the watcher's default patterns", () => {
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
    assert.equal(matchesAny(path, [glob]), expected, `${glob} vs ${path}`);
  }
  assert.ok(matchesAny("workers/a/private/views/x.html", defaultWatchPaths()));
  assert.ok(matchesAny("node_modules/x/y.js", DEFAULT_WATCH_IGNORE));
  // The suite run beside `deno task dev` writes fixtures; none may trigger anything.
  assert.ok(matchesAny("tests/testdata/x/src/main.ts", DEFAULT_WATCH_IGNORE));
});

Deno.test("matchesAny() supports braces and character classes (they used to be literal text)", () => {
  const cases: [string, string, boolean][] = [
    ["src/**/*.{ts,tsx}", "src/a/b.tsx", true],
    ["src/**/*.{ts,tsx}", "src/b.ts", true],
    ["src/**/*.{ts,tsx}", "src/b.js", false],
    ["src/[ab].ts", "src/a.ts", true],
    ["src/[ab].ts", "src/c.ts", false],
    ["workers/*/src/**/*.go", "workers/a/src/main.go", true],
    ["workers/*/src/**/*.go", "workers/a/src/pkg/x.go", true],
    ["workers/*/src/**/*.go", "workers/a/src/main.ts", false],
    ["workers/*/src/**/*.go", "workers/a/public/x.go", false],
  ];
  for (const [glob, path, expected] of cases) {
    assert.equal(matchesAny(path, [glob]), expected, `${glob} vs ${path}`);
  }
});
