import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultConfig } from "./defaults.ts";
import { defaultRoute, discoverWorkers, settingsFor } from "./discover.ts";
import { loadConfig } from "./load.ts";
import { type Config, ConfigError } from "./types.ts";

/** Files to create: path → text, or `{ exec: text }` for an executable file. */
type Files = Record<string, string | { exec: string }>;

async function withProject(
  files: Files,
  fn: (root: string) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "tq_discover_" });
  try {
    for (const [path, content] of Object.entries(files)) {
      const full = join(root, path);
      await Deno.mkdir(join(full, ".."), { recursive: true });
      if (path.endsWith("/")) {
        await Deno.mkdir(full, { recursive: true });
      } else if (typeof content === "string") {
        await Deno.writeTextFile(full, content, { mode: 0o644 });
      } else {
        await Deno.writeTextFile(full, content.exec, { mode: 0o755 });
      }
    }
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const MAIN = "export {};\n";
const SCRIPT = { exec: "#!/bin/sh\nexit 0\n" };

async function discover(root: string, config?: Config) {
  const warnings: string[] = [];
  const loaded = config ??
    (await loadConfig({ root, env: () => undefined })).config;
  const specs = await discoverWorkers(root, loaded, {
    warn: (message) => warnings.push(message),
  });
  return { specs, warnings };
}

async function discoverError(files: Files): Promise<ConfigError> {
  let caught: unknown;
  await withProject(files, async (root) => {
    try {
      await discover(root);
    } catch (err) {
      caught = err;
    }
  });
  assert.ok(
    caught instanceof ConfigError,
    `expected a ConfigError, got ${caught}`,
  );
  return caught;
}

Deno.test("defaultRoute() maps index to / and underscores to slashes", () => {
  assert.equal(defaultRoute("index"), "/");
  assert.equal(defaultRoute("api"), "/api");
  assert.equal(defaultRoute("api_users"), "/api/users");
  assert.equal(defaultRoute("my-app"), "/my-app");
});

Deno.test("discoverWorkers() tells TypeScript workers from binary ones and skips the rest with a reason", async () => {
  await withProject({
    "workers/index/src/main.ts": MAIN,
    "workers/api_users/src/main.ts": MAIN,
    "workers/api_users/bin/api_users": SCRIPT,
    "workers/legacy/bin/legacy": SCRIPT,
    "workers/notexec/bin/notexec": "#!/bin/sh\n",
    "workers/empty/": "",
    "workers/Bad_Name/src/main.ts": MAIN,
    "workers/.hidden/src/main.ts": MAIN,
    "workers/README.md": "not a worker",
  }, async (root) => {
    const { specs, warnings } = await discover(root);
    const dir = (name: string) => join(root, "workers", name);
    assert.deepEqual(specs.map((s) => [s.name, s.kind, s.route]), [
      ["api_users", "typescript", "/api/users"],
      ["index", "typescript", "/"],
      ["legacy", "binary", "/legacy"],
    ]);
    const [apiUsers, , legacy] = specs;
    assert.equal(apiUsers?.dir, dir("api_users"));
    assert.equal(apiUsers?.entry, join(dir("api_users"), "src/main.ts"));
    assert.equal(apiUsers?.binPath, join(dir("api_users"), "bin/api_users"));
    assert.equal(legacy?.entry, undefined);
    assert.equal(legacy?.binPath, join(dir("legacy"), "bin/legacy"));
    assert.deepEqual(legacy?.settings, defaultConfig().workers.default);
    assert.deepEqual(warnings.sort(), [
      `Skipped "workers/Bad_Name": a worker's folder name uses only lowercase letters, digits, "_" and "-", and starts with a letter or digit (rename it, e.g. to "bad_name")`,
      `Skipped "workers/empty": no file in it matches "workers.discovery.include_patterns" ("*/src/main.ts", "*/src/main.go", "*/bin/{name}")`,
      `Skipped "workers/notexec": "bin/notexec" is not executable (run chmod +x) and there is no src/main.ts or src/main.go`,
    ]);
  });
});

Deno.test("discoverWorkers() returns no workers and a warning when the folder is missing", async () => {
  await withProject({}, async (root) => {
    const { specs, warnings } = await discover(root);
    assert.deepEqual(specs, []);
    assert.deepEqual(warnings, [
      `Workers folder "workers" does not exist: no workers`,
    ]);
  });
});

Deno.test("discoverWorkers() uses workers.routes overrides and warns about unused ones", async () => {
  await withProject({
    "config/server.yaml":
      "workers:\n  workers_dir: apps\n  routes:\n    home: /\n    ghost: /ghost\n",
    "apps/home/src/main.ts": MAIN,
    "apps/blog/src/main.ts": MAIN,
  }, async (root) => {
    const { specs, warnings } = await discover(root);
    assert.deepEqual(specs.map((s) => [s.name, s.route]), [["blog", "/blog"], [
      "home",
      "/",
    ]]);
    assert.deepEqual(warnings, [
      `config/server.yaml:5: "workers.routes.ghost" names no worker (no usable folder "apps/ghost")`,
    ]);
  });
});

Deno.test("discoverWorkers() rejects a route inside a reserved prefix", async (t) => {
  await t.step("an override names the file, line and key", async () => {
    const err = await discoverError({
      "config/server.yaml": "workers:\n  routes:\n    blog: /static/blog\n",
      "workers/blog/src/main.ts": MAIN,
    });
    assert.equal(err.file, "config/server.yaml");
    assert.equal(err.line, 3);
    assert.equal(err.key, "workers.routes.blog");
    assert.match(
      err.message,
      /route "\/static\/blog" is inside the reserved prefix "\/static"/,
    );
  });
  await t.step("a default route names the worker folder", async () => {
    const err = await discoverError({ "workers/static/src/main.ts": MAIN });
    assert.equal(err.file, "workers/static");
    assert.equal(err.line, 0);
    assert.match(
      err.message,
      /default route "\/static" of worker "static" is inside the reserved prefix "\/static"/,
    );
  });
  await t.step("/_tq is reserved", async () => {
    const err = await discoverError({
      "config/server.yaml": "workers:\n  routes:\n    blog: /_tq\n",
      "workers/blog/src/main.ts": MAIN,
    });
    assert.equal(err.key, "workers.routes.blog");
    assert.match(err.message, /reserved prefix "\/_tq"/);
  });
  await t.step(
    "the reserved prefix follows server.static.url_prefix",
    async () => {
      const err = await discoverError({
        "config/server.yaml": "server:\n  static:\n    url_prefix: /assets\n",
        "workers/assets_css/src/main.ts": MAIN,
      });
      assert.equal(err.file, "workers/assets_css");
      assert.match(
        err.message,
        /"\/assets\/css" .* reserved prefix "\/assets"/,
      );
    },
  );
  await t.step(
    "a default route that is not a valid route names the folder",
    async () => {
      const err = await discoverError({ "workers/blog_/src/main.ts": MAIN });
      assert.equal(err.file, "workers/blog_");
      assert.match(
        err.message,
        /default route "\/blog\/" of worker "blog_" is not/,
      );
    },
  );
  await t.step("an override makes an odd folder name usable", async () => {
    await withProject({
      "config/server.yaml": "workers:\n  routes:\n    blog_: /blog\n",
      "workers/blog_/src/main.ts": MAIN,
    }, async (root) => {
      const { specs } = await discover(root);
      assert.deepEqual(specs.map((s) => s.route), ["/blog"]);
    });
  });
  await t.step("a route sharing only a string prefix is allowed", async () => {
    await withProject({
      "config/server.yaml": "workers:\n  routes:\n    tqx: /_tqx\n",
      "workers/staticfiles/src/main.ts": MAIN,
      "workers/tqx/src/main.ts": MAIN,
    }, async (root) => {
      const { specs } = await discover(root);
      assert.deepEqual(specs.map((s) => s.route), ["/staticfiles", "/_tqx"]);
    });
  });
});

Deno.test("discoverWorkers() rejects two workers with the same route, naming both", async () => {
  const err = await discoverError({
    "config/server.yaml": "workers:\n  routes:\n    users: /api/users\n",
    "workers/api_users/src/main.ts": MAIN,
    "workers/users/bin/users": SCRIPT,
  });
  assert.equal(err.file, "config/server.yaml");
  assert.equal(err.line, 3);
  assert.equal(err.key, "workers.routes.users");
  assert.match(
    err.message,
    /workers "api_users" and "users" both have the route "\/api\/users"/,
  );
});

Deno.test("settingsFor() merges workers.default with matching paths, shorter prefixes first", async () => {
  await withProject({
    "config/server.yaml": [
      "workers:",
      "  default:",
      "    max_requests: 10",
      "    env: { A: default, B: default }",
      "  paths:",
      "    /api/users:",
      "      instances: 3",
      "      env: { B: users }",
      "    /api:",
      "      instances: 2",
      "      write_timeout_seconds: 5",
      "      env: { B: api, C: api }",
      "    /apix:",
      "      instances: 9",
    ].join("\n"),
    "workers/api_users/src/main.ts": MAIN,
    "workers/api/src/main.ts": MAIN,
    "workers/apix/src/main.ts": MAIN,
    "workers/index/src/main.ts": MAIN,
  }, async (root) => {
    const { config } = await loadConfig({ root, env: () => undefined });
    const users = settingsFor("/api/users", config);
    assert.equal(users.instances, 3, "the longer prefix wins");
    assert.equal(users.write_timeout_seconds, 5);
    assert.equal(users.max_requests, 10);
    assert.deepEqual(users.env, { A: "default", B: "users", C: "api" });
    assert.deepEqual(
      config.workers.default.env,
      { A: "default", B: "default" },
      "defaults untouched",
    );

    const { specs } = await discover(root, config);
    const byName = Object.fromEntries(specs.map((s) => [s.name, s.settings]));
    assert.equal(byName.api?.instances, 2);
    assert.deepEqual(byName.api?.env, { A: "default", B: "api", C: "api" });
    assert.equal(byName.apix?.instances, 9, "/api does not match /apix");
    assert.equal(byName.apix?.write_timeout_seconds, 30);
    assert.equal(byName.index?.instances, 1);
    assert.deepEqual(byName.index?.env, { A: "default", B: "default" });
  });
});
