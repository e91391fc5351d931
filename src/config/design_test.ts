// The deployment organization design's own config files, verbatim
// (tests/testdata/design/config/), and the keys they brought in.
import assert from "node:assert/strict";
import { join } from "node:path";
import { discoverWorkers, settingsFor } from "./discover.ts";
import { loadConfig } from "./load.ts";
import { ConfigError } from "./types.ts";

const DESIGN = join(
  import.meta.dirname!,
  "..",
  "..",
  "tests",
  "testdata",
  "design",
);

const noEnv = () => undefined;

async function withProject(
  files: Record<string, string>,
  fn: (root: string) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "tq_design_" });
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(join(root, path, ".."), { recursive: true });
      await Deno.writeTextFile(join(root, path), text);
      if (path.includes("/bin/")) await Deno.chmod(join(root, path), 0o755);
    }
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function loadError(files: Record<string, string>): Promise<ConfigError> {
  let caught: unknown;
  await withProject(files, async (root) => {
    try {
      await loadConfig({ root, env: noEnv });
    } catch (err) {
      caught = err;
    }
  });
  assert.ok(caught instanceof ConfigError, `expected a ConfigError: ${caught}`);
  return caught;
}

Deno.test("the design's server.yaml and deployment.yaml load verbatim without a single warning", async () => {
  const { config, files, warnings } = await loadConfig({
    root: DESIGN,
    env: noEnv,
  });
  assert.equal(files.length, 2);
  assert.deepEqual(warnings, []);
  const { dev, prod } = config.deployment;
  assert.deepEqual(dev.file_watcher.watch_patterns, [
    "workers/*/src/**/*.go",
    "server/src/**/*.go",
    "config/*.yaml",
  ]);
  assert.equal(dev.file_watcher.debounce_ms, 100);
  assert.equal(prod.file_watcher.enabled, false);
  assert.deepEqual(config.workers.discovery, {
    mode: "filesystem",
    workers_dir: "workers",
    include_patterns: ["*/src/main.go"],
  });
  assert.equal(config.workers.workers_dir, "workers");
  assert.equal(config.server.static.dev_root, "workers");
  assert.deepEqual(config.binaries, {
    format: "{worker_name}",
    path: "workers/{worker_name}/bin/{worker_name}",
  });
  assert.equal(dev.build.output_dir, "bin");
  assert.equal(prod.build.output_dir, "workers");
  assert.equal(dev.build.parallel_builds, 4);
  assert.equal(prod.build.parallel_builds, 8);
  assert.equal(dev.build.ldflags, "");
  assert.equal(prod.build.ldflags, "-s -w");
  assert.equal(dev.resources.watch_resource_changes, true);
  assert.equal(prod.resources.watch_resource_changes, false);
  assert.equal(prod.timestamp_check.trigger, "sighup");
  assert.equal(dev.timestamp_check.trigger, "sighup");
  assert.equal(prod.timestamp_check.enabled, true);
  assert.equal(config.workers.default.go_max_procs, 1);
  assert.equal(config.workers.default.go_mem_limit, "");
  assert.equal(settingsFor("/api/users", config).go_max_procs, 2);
  assert.equal(settingsFor("/api/users", config).max_requests, 5000);
  assert.equal(settingsFor("/", config).go_max_procs, 1);
  assert.equal(config.workers.shutdown_grace_period_ms, 500);
});

Deno.test("the design's include_patterns make only src/main.go folders workers, at binaries.path", async () => {
  await withProject({
    "config/server.yaml": await Deno.readTextFile(
      join(DESIGN, "config", "server.yaml"),
    ),
    "workers/index/src/main.go": "package main\n",
    "workers/api_users/src/main.go": "package main\n",
    "workers/tsonly/src/main.ts": "export {};\n",
    "workers/prebuilt/bin/prebuilt": "#!/bin/sh\n",
  }, async (root) => {
    const { config } = await loadConfig({ root, env: noEnv });
    const warnings: string[] = [];
    const specs = await discoverWorkers(root, config, {
      warn: (m) => warnings.push(m),
    });
    assert.deepEqual(specs.map((s) => [s.name, s.kind, s.route]), [
      ["api_users", "go", "/api/users"],
      ["index", "go", "/"],
    ]);
    assert.equal(specs[1]?.entry, join(root, "workers/index/src/main.go"));
    assert.equal(specs[1]?.binPath, join(root, "workers/index/bin/index"));
    assert.deepEqual(warnings.sort(), [
      `Skipped "workers/prebuilt": no file in it matches "workers.discovery.include_patterns" ("*/src/main.go")`,
      `Skipped "workers/tsonly": no file in it matches "workers.discovery.include_patterns" ("*/src/main.go")`,
    ]);
  });
});

Deno.test("file_watcher.paths still works, with a warning naming watch_patterns", async () => {
  await withProject({
    "config/deployment.yaml":
      'deployment:\n  dev:\n    file_watcher:\n      paths: ["src/**/*.{ts,tsx}"]\n',
  }, async (root) => {
    const { config, warnings } = await loadConfig({ root, env: noEnv });
    assert.deepEqual(config.deployment.dev.file_watcher.watch_patterns, [
      "src/**/*.{ts,tsx}",
    ]);
    assert.deepEqual(warnings, [
      `config/deployment.yaml:4: "deployment.dev.file_watcher.paths" is deprecated, use "deployment.dev.file_watcher.watch_patterns"`,
    ]);
  });
});

Deno.test("two names of the workers folder that disagree are an error naming both", async (t) => {
  await t.step(
    "workers.workers_dir and workers.discovery.workers_dir",
    async () => {
      const err = await loadError({
        "config/server.yaml":
          "workers:\n  workers_dir: apps\n  discovery:\n    workers_dir: workers\n",
      });
      assert.equal(err.file, "config/server.yaml");
      assert.equal(err.line, 4);
      assert.equal(err.key, "workers.discovery.workers_dir");
      assert.match(
        err.message,
        /"workers\.discovery\.workers_dir" \("workers"\)/,
      );
      assert.match(
        err.message,
        /"workers\.workers_dir" \("apps"\) \(config\/server\.yaml:2\)/,
      );
    },
  );
  await t.step("server.static.dev_root and resources.base_path", async () => {
    const err = await loadError({
      "config/server.yaml": "server:\n  static:\n    dev_root: www\n",
      "config/deployment.yaml":
        "deployment:\n  prod:\n    resources:\n      base_path: workers\n",
    });
    assert.equal(err.key, "server.static.dev_root");
    assert.match(err.message, /"deployment\.prod\.resources\.base_path"/);
    assert.match(err.message, /config\/deployment\.yaml:4/);
  });
  await t.step("the same folder spelled differently agrees", async () => {
    await withProject({
      "config/server.yaml":
        "server:\n  static:\n    dev_root: ./apps/\nworkers:\n  discovery:\n    workers_dir: apps\n",
    }, async (root) => {
      const { config, warnings } = await loadConfig({ root, env: noEnv });
      assert.deepEqual(warnings, []);
      assert.equal(config.workers.workers_dir, "apps");
      assert.equal(
        config.binaries.path,
        "apps/{worker_name}/bin/{worker_name}",
      );
      assert.deepEqual(
        config.deployment.dev.file_watcher.watch_patterns[0],
        "apps/*/src/**",
      );
    });
  });
});

Deno.test("discovery.mode and timestamp_check.trigger accept only their one value, naming it", async () => {
  const mode = await loadError({
    "config/server.yaml": "workers:\n  discovery:\n    mode: consul\n",
  });
  assert.equal(
    mode.message,
    `config/server.yaml:3: "workers.discovery.mode": expected "filesystem", got "consul"`,
  );
  const trigger = await loadError({
    "config/deployment.yaml":
      "deployment:\n  prod:\n    timestamp_check:\n      trigger: inotify\n",
  });
  assert.equal(
    trigger.message,
    `config/deployment.yaml:4: "deployment.prod.timestamp_check.trigger": expected "sighup", got "inotify"`,
  );
});

Deno.test("workers.timestamp_check is the default of both modes and must agree with them", async () => {
  await withProject({
    "config/server.yaml": "workers:\n  timestamp_check:\n    enabled: false\n",
  }, async (root) => {
    const { config } = await loadConfig({ root, env: noEnv });
    assert.equal(config.deployment.prod.timestamp_check.enabled, false);
    assert.equal(config.deployment.dev.timestamp_check.enabled, false);
  });
  const err = await loadError({
    "config/server.yaml": "workers:\n  timestamp_check:\n    enabled: false\n",
    "config/deployment.yaml":
      "deployment:\n  prod:\n    timestamp_check:\n      enabled: true\n",
  });
  assert.equal(err.key, "deployment.prod.timestamp_check.enabled");
  assert.match(
    err.message,
    /"workers\.timestamp_check\.enabled" \(false\) \(config\/server\.yaml:3\)/,
  );
});

Deno.test("binaries.path places each worker's executable; output_dir must hold it", async (t) => {
  await t.step("a custom path is the binPath of every kind", async () => {
    await withProject({
      "config/deployment.yaml":
        'binaries:\n  path: "build/{worker_name}.exe"\n  format: "{worker_name}.exe"\ndeployment:\n  prod:\n    build:\n      output_dir: build\n',
      "workers/a/src/main.ts": "export {};\n",
      "workers/b/src/main.go": "package main\n",
      "build/c.exe": "#!/bin/sh\n",
      "workers/c/README": "prebuilt elsewhere\n",
      "workers/d/bin/d": "#!/bin/sh\n",
    }, async (root) => {
      await Deno.chmod(join(root, "build/c.exe"), 0o755);
      const { config, warnings } = await loadConfig({ root, env: noEnv });
      assert.deepEqual(warnings, []);
      assert.deepEqual(config.workers.discovery.include_patterns, [
        "*/src/main.ts",
        "*/src/main.go",
        "*/../../build/{name}.exe",
      ]);
      const skipped: string[] = [];
      const specs = await discoverWorkers(root, config, {
        warn: (m) => skipped.push(m),
      });
      assert.deepEqual(
        specs.map((s) => [s.name, s.kind, s.binPath]),
        [
          ["a", "typescript", join(root, "build/a.exe")],
          ["b", "go", join(root, "build/b.exe")],
          ["c", "binary", join(root, "build/c.exe")],
        ],
      );
      assert.equal(skipped.length, 1);
      assert.match(skipped[0]!, /^Skipped "workers\/d": no file in it matches/);
    });
  });
  await t.step(
    "an absolute path works for discovery and output_dir",
    async () => {
      await withProject({
        "workers/a/src/main.go": "package main\n",
        "workers/b/README": "prebuilt at the absolute path\n",
        "out/b": "#!/bin/sh\n",
      }, async (root) => {
        await Deno.chmod(join(root, "out/b"), 0o755);
        await Deno.mkdir(join(root, "config"));
        await Deno.writeTextFile(
          join(root, "config/deployment.yaml"),
          `binaries:\n  path: "${root}/out/{worker_name}"\ndeployment:\n  prod:\n    build:\n      output_dir: "${root}"\n`,
        );
        const { config } = await loadConfig({ root, env: noEnv });
        assert.equal(config.deployment.dev.build.output_dir, `${root}/out`);
        const specs = await discoverWorkers(root, config);
        assert.deepEqual(specs.map((s) => [s.name, s.kind, s.binPath]), [
          ["a", "go", join(root, "out/a")],
          ["b", "binary", join(root, "out/b")],
        ]);
      });
    },
  );
  await t.step(
    "an output_dir that cannot hold the binary names both keys",
    async () => {
      const err = await loadError({
        "config/deployment.yaml":
          "deployment:\n  dev:\n    build:\n      output_dir: out\n",
      });
      assert.equal(err.key, "deployment.dev.build.output_dir");
      assert.equal(err.line, 4);
      assert.match(
        err.message,
        /"binaries\.path" \("workers\/\{worker_name\}\/bin\/\{worker_name\}"\)/,
      );
      assert.match(err.message, /got "out"/);
    },
  );
  await t.step(
    "a format that is not the path's file name names both keys",
    async () => {
      const err = await loadError({
        "config/deployment.yaml":
          'binaries:\n  format: "tq_{worker_name}"\n  path: "workers/{worker_name}/bin/{worker_name}"\n',
      });
      assert.equal(err.key, "binaries.format");
      assert.match(
        err.message,
        /"binaries\.path" \("workers\/\{worker_name\}\/bin\/\{worker_name\}"\) \(config\/deployment\.yaml:3\)/,
      );
    },
  );
  await t.step(
    "format alone renames the file in the default folder",
    async () => {
      await withProject({
        "config/deployment.yaml": 'binaries:\n  format: "tq_{worker_name}"\n',
      }, async (root) => {
        const { config } = await loadConfig({ root, env: noEnv });
        assert.equal(
          config.binaries.path,
          "workers/{worker_name}/bin/tq_{worker_name}",
        );
        assert.equal(
          config.workers.discovery.include_patterns[2],
          "*/bin/tq_{name}",
        );
      });
    },
  );
  await t.step("a path without {worker_name} is rejected", async () => {
    const err = await loadError({
      "config/deployment.yaml": "binaries:\n  path: bin/app\n",
    });
    assert.equal(err.key, "binaries.path");
    assert.match(err.message, /contains "\{worker_name\}"/);
  });
});

Deno.test("go_max_procs and go_mem_limit are settings; a TypeScript worker gets a warning instead", async () => {
  await withProject({
    "config/server.yaml":
      "workers:\n  default:\n    go_mem_limit: 256MiB\n  paths:\n    /api:\n      go_max_procs: 3\n",
    "workers/api/src/main.ts": "export {};\n",
    "workers/api_go/src/main.go": "package main\n",
  }, async (root) => {
    const { config, warnings } = await loadConfig({ root, env: noEnv });
    assert.deepEqual(warnings, []);
    const problems: string[] = [];
    const specs = await discoverWorkers(root, config, {
      warn: (m) => problems.push(m),
    });
    const go = specs.find((s) => s.name === "api_go")!;
    assert.equal(go.settings.go_max_procs, 3);
    assert.equal(go.settings.go_mem_limit, "256MiB");
    assert.deepEqual(problems, [
      `"go_max_procs" has no effect for worker "api": it is a TypeScript worker (GOMAXPROCS and GOMEMLIMIT are for Go workers)`,
      `"go_mem_limit" has no effect for worker "api": it is a TypeScript worker (GOMAXPROCS and GOMEMLIMIT are for Go workers)`,
    ]);
  });
  const bad = await loadError({
    "config/server.yaml": "workers:\n  default:\n    go_mem_limit: lots\n",
  });
  assert.equal(bad.key, "workers.default.go_mem_limit");
});
