import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultConfig } from "./defaults.ts";
import { settingsFor } from "./discover.ts";
import {
  loadConfig,
  type LoadConfigOptions,
  resolveMode,
  whereSet,
} from "./load.ts";
import { ConfigError } from "./types.ts";

/** Creates a temp project root with the given files, runs `fn`, removes it. */
async function withProject(
  files: Record<string, string>,
  fn: (root: string) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "tq_config_" });
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(join(root, path, ".."), { recursive: true });
      await Deno.writeTextFile(join(root, path), text);
    }
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const noEnv = () => undefined;

function load(root: string, options: Partial<LoadConfigOptions> = {}) {
  return loadConfig({ root, env: noEnv, ...options });
}

async function loadError(
  files: Record<string, string>,
): Promise<ConfigError> {
  let caught: unknown;
  await withProject(files, async (root) => {
    try {
      await load(root);
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

Deno.test("loadConfig() runs on every default when no config file exists", async () => {
  await withProject({}, async (root) => {
    const { config, files, warnings } = await load(root);
    assert.deepEqual(files, []);
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, defaultConfig());
    assert.equal(config.server.port, 8080);
    // Unset: the server picks 127.0.0.1 in dev, 0.0.0.0 in prod.
    assert.equal(config.server.host, "");
    assert.deepEqual(config.server.admin, {
      enabled: true,
      host: "127.0.0.1",
      port: 8081,
      token: "",
    });
    assert.deepEqual(config.server.static, {
      enabled: true,
      url_prefix: "/static",
      cache_max_age_seconds: 3600,
      dev_root: "workers",
      cache_max_bytes: 64 * 1024 * 1024,
      cache_file_max_bytes: 256 * 1024,
      revalidate_ms: 1000,
    });
    assert.equal(config.server.compression.enabled, true);
    assert.equal(config.server.compression.min_bytes, 1024);
    assert.ok(config.server.compression.types.includes("text/*"));
    assert.equal(config.workers.port_range_start, 9000);
    assert.equal(config.workers.port_range_end, 9999);
    assert.equal(config.workers.workers_dir, "workers");
    assert.deepEqual(config.workers.default, {
      max_requests: 0,
      read_timeout_seconds: 30,
      write_timeout_seconds: 30,
      idle_timeout_seconds: 120,
      env: {},
      health_path: "/health",
      retry_window_ms: 3000,
      websocket_drain_ms: 1000,
      startup_timeout_ms: 10000,
      drain_timeout_ms: 30000,
      instances: 1,
      go_max_procs: 0,
      go_mem_limit: "",
      log_file: "",
    });
    assert.deepEqual(config.workers.discovery, {
      mode: "filesystem",
      workers_dir: "workers",
      include_patterns: ["*/src/main.ts", "*/src/main.go", "*/bin/{name}"],
    });
    assert.deepEqual(config.binaries, {
      format: "{worker_name}",
      path: "workers/{worker_name}/bin/{worker_name}",
    });
    assert.equal(config.deployment.mode, undefined);
    assert.equal(config.deployment.dev.file_watcher.enabled, true);
    assert.equal(config.deployment.prod.file_watcher.enabled, false);
    assert.equal(config.deployment.dev.file_watcher.debounce_ms, 50);
    assert.deepEqual(config.deployment.dev.file_watcher.watch_patterns, [
      "workers/*/src/**",
      "workers/*/go.{mod,sum}",
      "workers/*/public/**",
      "workers/*/private/**",
      "workers/*/bin/*",
      "config/*.yaml",
      "main.ts",
      "src/**",
    ]);
    assert.equal(config.deployment.dev.build.format, "bundle");
    assert.equal(config.deployment.dev.build.output_dir, "bin");
    assert.equal(config.deployment.dev.build.ldflags, "");
    assert.equal(config.deployment.prod.build.ldflags, "-s -w");
    assert.equal(config.deployment.dev.resources.watch_resource_changes, true);
    assert.equal(config.deployment.prod.timestamp_check.trigger, "sighup");
    assert.equal(config.deployment.prod.build.format, "compile");
    assert.deepEqual(config.deployment.prod.build.permissions, ["--allow-all"]);
    assert.equal(resolveMode({ config }), "dev");
  });
});

Deno.test("loadConfig() merges both files over the defaults", async () => {
  await withProject({
    "config/server.yaml": [
      "server:",
      "  port: 3000",
      "  static:",
      "    url_prefix: /assets/",
      "workers:",
      "  workers_dir: apps",
      "  default:",
      "    env:",
      "      DEBUG: 1",
      "      VERBOSE: true",
      "      EMPTY:",
      "  paths:",
      "    /api/:",
      "      max_requests: 100",
      "  routes:",
      "    home: /",
    ].join("\n"),
    "config/deployment.yaml": [
      "deployment:",
      "  mode: prod",
      "  prod:",
      "    build:",
      "      permissions: [--allow-net, --allow-read]",
      "  targets:",
      "    live:",
      "      hosts: [deploy@example.com]",
      "      path: /srv/app",
    ].join("\n"),
  }, async (root) => {
    const { config, files, warnings } = await load(root);
    assert.deepEqual(files, [
      join(root, "config/server.yaml"),
      join(root, "config/deployment.yaml"),
    ]);
    assert.deepEqual(warnings, []);
    assert.equal(config.server.port, 3000);
    assert.equal(config.server.host, "");
    assert.equal(
      config.server.static.url_prefix,
      "/assets",
      "trailing slash dropped",
    );
    assert.equal(config.server.static.cache_max_age_seconds, 3600);
    assert.deepEqual(config.workers.default.env, {
      DEBUG: "1",
      VERBOSE: "true",
      EMPTY: "",
    });
    assert.equal(config.workers.default.instances, 1);
    assert.deepEqual(config.workers.paths, { "/api": { max_requests: 100 } });
    assert.deepEqual(config.workers.routes, { home: "/" });
    assert.equal(config.deployment.mode, "prod");
    assert.deepEqual(config.deployment.prod.build.permissions, [
      "--allow-net",
      "--allow-read",
    ]);
    assert.equal(config.deployment.prod.build.format, "compile");
    assert.equal(
      config.deployment.dev.file_watcher.watch_patterns[0],
      "apps/*/src/**",
    );
    assert.deepEqual(config.deployment.targets, {
      live: {
        hosts: ["deploy@example.com"],
        path: "/srv/app",
        ssh_options: "",
        admin_url: "",
        batch: 1,
        canary_seconds: 60,
        keep_releases: 5,
      },
    });
  });
});

Deno.test("loadConfig() accepts empty files and empty sections", async () => {
  await withProject({
    "config/server.yaml": "# nothing yet\n",
    "config/deployment.yaml": "deployment:\n",
  }, async (root) => {
    const { config, files, warnings } = await load(root);
    assert.equal(files.length, 2);
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, defaultConfig());
  });
});

Deno.test("loadConfig() expands ${VAR} and ${VAR:-default} before type checks", async (t) => {
  const files = {
    "config/server.yaml": [
      "server:",
      "  port: ${PORT:-8080}",
      "  deployment_mode: ${DEPLOYMENT_MODE}",
      "  log_file: logs/${NAME}-{date}.log",
      "  static:",
      "    enabled: ${STATIC:-false}",
      "workers:",
      "  default:",
      "    env:",
      "      TOKEN: ${TOKEN:-none}",
    ].join("\n"),
  };
  await withProject(files, async (root) => {
    await t.step(
      "unset variables take the default or expand to nothing",
      async () => {
        const { config } = await load(root);
        assert.equal(config.server.port, 8080);
        assert.equal(config.server.deployment_mode, undefined);
        assert.equal(config.server.log_file, "logs/-{date}.log");
        assert.equal(config.server.static.enabled, false);
        assert.deepEqual(config.workers.default.env, { TOKEN: "none" });
      },
    );
    await t.step("set variables are used and typed", async () => {
      const env: Record<string, string> = {
        PORT: "9090",
        DEPLOYMENT_MODE: "prod",
        NAME: "tq",
        STATIC: "true",
        TOKEN: "s3cret",
      };
      const { config } = await load(root, { env: (name) => env[name] });
      assert.equal(config.server.port, 9090);
      assert.equal(config.server.deployment_mode, "prod");
      assert.equal(config.server.log_file, "logs/tq-{date}.log");
      assert.equal(config.server.static.enabled, true);
      assert.deepEqual(config.workers.default.env, { TOKEN: "s3cret" });
      assert.equal(resolveMode({ config }), "prod");
    });
    await t.step(
      "an expanded value of the wrong type is an error",
      async () => {
        await assert.rejects(
          load(root, { env: (name) => name === "PORT" ? "http" : undefined }),
          (err: unknown) =>
            err instanceof ConfigError &&
            err.message ===
              `config/server.yaml:2: "server.port": expected an integer from 0 to 65535 (0 = any free port), got "http"`,
        );
      },
    );
  });
});

Deno.test("loadConfig() names file, line, key and expectation for a bad value", async (t) => {
  const cases: Array<[string, Record<string, string>, string]> = [
    [
      "port not a number",
      { "config/server.yaml": "# ports\nserver:\n  port: abc\n" },
      `config/server.yaml:3: "server.port": expected an integer from 0 to 65535 (0 = any free port), got "abc"`,
    ],
    [
      "port out of range",
      { "config/server.yaml": "server:\n  admin:\n    port: 70000\n" },
      `config/server.yaml:3: "server.admin.port": expected an integer from 0 to 65535 (0 = any free port), got 70000`,
    ],
    [
      "negative duration",
      { "config/server.yaml": "workers:\n  restart_delay_ms: -5\n" },
      `config/server.yaml:2: "workers.restart_delay_ms": expected a number >= 0, got -5`,
    ],
    [
      "zero instances",
      {
        "config/server.yaml":
          "workers:\n  paths:\n    /api:\n      instances: 0\n",
      },
      `config/server.yaml:4: "workers.paths."/api".instances": expected an integer >= 1 or "auto" (one per CPU), got 0`,
    ],
    [
      "bad mode",
      { "config/deployment.yaml": "deployment:\n  mode: staging\n" },
      `config/deployment.yaml:2: "deployment.mode": expected "dev" or "prod", got "staging"`,
    ],
    [
      "bad build format",
      {
        "config/deployment.yaml":
          "deployment:\n  dev:\n    build:\n      format: zip\n",
      },
      `config/deployment.yaml:4: "deployment.dev.build.format": expected "bundle" or "compile", got "zip"`,
    ],
    [
      "url_prefix without slash",
      { "config/server.yaml": "server:\n  static:\n    url_prefix: static\n" },
      `config/server.yaml:3: "server.static.url_prefix": expected a path that starts with "/", e.g. "/static", got "static"`,
    ],
    [
      "compression type that is not a media type",
      {
        "config/server.yaml":
          "server:\n  compression:\n    types:\n      - text/html\n      - html\n",
      },
      `config/server.yaml:5: "server.compression.types.1": expected a media type like "text/html", or with one "*" like "text/*", got "html"`,
    ],
    [
      "negative revalidate_ms",
      { "config/server.yaml": "server:\n  static:\n    revalidate_ms: -1\n" },
      `config/server.yaml:3: "server.static.revalidate_ms": expected an integer >= 0, got -1`,
    ],
    [
      "route with trailing slash",
      { "config/server.yaml": "workers:\n  routes:\n    api: /api/\n" },
      `config/server.yaml:3: "workers.routes.api": expected a path that starts with "/" and has no trailing slash, e.g. "/api", got "/api/"`,
    ],
    [
      "paths key without slash",
      {
        "config/server.yaml":
          "workers:\n  paths:\n    api:\n      max_requests: 1\n",
      },
      `config/server.yaml:3: "workers.paths.api": expected the key to be a path prefix that starts with "/"`,
    ],
    [
      "env value not a string",
      {
        "config/server.yaml":
          "workers:\n  default:\n    env:\n      LIST: [1, 2]\n",
      },
      `config/server.yaml:4: "workers.default.env.LIST": expected a string, got a list`,
    ],
    [
      "boolean as word",
      { "config/server.yaml": "server:\n  static:\n    enabled: maybe\n" },
      `config/server.yaml:3: "server.static.enabled": expected true or false, got "maybe"`,
    ],
    [
      "section not a mapping",
      { "config/server.yaml": "server: 8080\n" },
      `config/server.yaml:1: "server": expected a mapping, got 8080`,
    ],
    [
      "document not a mapping",
      { "config/server.yaml": "- server\n" },
      `config/server.yaml:1: expected a mapping with top-level keys like "server:", got a list`,
    ],
    [
      "port range reversed",
      {
        "config/server.yaml":
          "workers:\n  port_range_start: 9500\n  port_range_end: 9100\n",
      },
      `config/server.yaml:2: "workers.port_range_start": expected at most "workers.port_range_end" (9100), got 9500`,
    ],
    [
      "public port on the default admin port",
      { "config/server.yaml": "server:\n  port: 8081\n" },
      `config/server.yaml:2: "server.port": expected a port other than "server.admin.port" (8081), got 8081`,
    ],
    [
      "admin on a public address without a token",
      { "config/server.yaml": "server:\n  admin:\n    host: 0.0.0.0\n" },
      `config/server.yaml:3: "server.admin.host": expected a loopback address (127.0.0.1, ::1, localhost) unless "server.admin.token" is set, got "0.0.0.0"`,
    ],
  ];
  for (const [name, files, message] of cases) {
    await t.step(name, async () => {
      const err = await loadError(files);
      assert.equal(err.message, message);
      assert.ok(err.line > 0);
    });
  }
});

Deno.test("instances: auto is one instance per CPU, in workers.default and workers.paths", async () => {
  await withProject({
    "config/server.yaml": "workers:\n  default:\n    instances: auto\n" +
      "  paths:\n    /api:\n      instances: ${API_INSTANCES:-auto}\n" +
      "    /one:\n      instances: 1\n",
  }, async (root) => {
    const { config, warnings } = await load(root);
    assert.deepEqual(warnings, []);
    const cpus = navigator.hardwareConcurrency;
    assert.ok(cpus >= 1);
    assert.equal(config.workers.default.instances, cpus);
    assert.equal(settingsFor("/api/x", config).instances, cpus);
    assert.equal(settingsFor("/one", config).instances, 1);
  });
  const err = await loadError({
    "config/server.yaml": "workers:\n  default:\n    instances: all\n",
  });
  assert.match(err.message, /expected an integer >= 1 or "auto"/);
});

Deno.test("loadConfig() turns a YAML syntax error into a ConfigError with its line", async () => {
  const err = await loadError({
    "config/server.yaml":
      "server:\n  port: 8080\n  host: [1, 2\nworkers:\n  x: 1\n",
  });
  assert.equal(err.file, "config/server.yaml");
  assert.ok(err.line >= 3, `line ${err.line}`);
  assert.match(err.message, /^config\/server\.yaml:\d+: invalid YAML: /);

  const dup = await loadError({
    "config/server.yaml": "server:\n  port: 1\n  port: 2\n",
  });
  assert.equal(dup.line, 3);
  assert.match(dup.message, /unique/);
});

Deno.test("loadConfig() warns about unknown keys naming the nearest known key", async () => {
  await withProject({
    "config/server.yaml": [
      "server:",
      "  host: 127.0.0.1",
      "  prot: 8081",
      "  workers_dir: apps",
      "workers:",
      "  paths:",
      "    /api:",
      "      instance: 2",
    ].join("\n"),
    "config/deployment.yaml": "deployment:\n  dev:\n    enabled: false\n",
  }, async (root) => {
    const { config, warnings } = await load(root);
    assert.deepEqual(warnings, [
      `config/server.yaml:3: unknown key "server.prot" (did you mean "server.port"?)`,
      `config/server.yaml:4: unknown key "server.workers_dir" (did you mean "workers.workers_dir"?)`,
      `config/server.yaml:8: unknown key "workers.paths."/api".instance" (did you mean "workers.paths."/api".instances"?)`,
      `config/deployment.yaml:3: unknown key "deployment.dev.enabled" (did you mean "deployment.dev.file_watcher.enabled"?)`,
    ]);
    assert.equal(config.server.port, 8080, "unknown keys are ignored");
    assert.equal(config.workers.workers_dir, "workers");
  });
});

Deno.test("loadConfig() warns that Go-only keys have no effect", async () => {
  await withProject({
    "config/server.yaml": "server:\n  go_max_procs: 4\n",
    "config/deployment.yaml":
      "deployment:\n  prod:\n    resources:\n      go_mem_limit: 512MiB\n",
  }, async (root) => {
    const { warnings } = await load(root);
    assert.deepEqual(warnings, [
      `config/server.yaml:2: "server.go_max_procs" has no effect in tqserver (Go-only key)`,
      `config/deployment.yaml:4: "deployment.prod.resources.go_mem_limit" has no effect in tqserver (Go-only key)`,
    ]);
  });
});

Deno.test("loadConfig() accepts workers.directory as a deprecated alias", async () => {
  await withProject(
    { "config/server.yaml": "workers:\n  directory: apps\n" },
    async (root) => {
      const { config, warnings } = await load(root);
      assert.equal(config.workers.workers_dir, "apps");
      assert.deepEqual(warnings, [
        `config/server.yaml:2: "workers.directory" is deprecated, use "workers.workers_dir"`,
      ]);
    },
  );
});

Deno.test("loadConfig() reads --config FILE and the deployment.yaml beside it", async () => {
  await withProject({
    "etc/tq.yaml": "server:\n  port: 4000\n",
    "etc/deployment.yaml": "deployment:\n  mode: prod\n",
    "config/server.yaml": "server:\n  port: 5000\n",
  }, async (root) => {
    const { config, files } = await load(root, { configFile: "etc/tq.yaml" });
    assert.equal(config.server.port, 4000);
    assert.equal(config.deployment.mode, "prod");
    assert.deepEqual(files, [
      join(root, "etc/tq.yaml"),
      join(root, "etc/deployment.yaml"),
    ]);
    await assert.rejects(
      load(root, { configFile: "etc/missing.yaml" }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message === "etc/missing.yaml: file not found",
    );
  });
});

Deno.test("resolveMode() prefers --mode, then DEPLOYMENT_MODE, then server.deployment_mode, then deployment.mode", async (t) => {
  const config = defaultConfig();
  await t.step("dev when nothing is set", () => {
    assert.equal(resolveMode({ config }), "dev");
  });
  config.deployment.mode = "prod";
  await t.step("deployment.mode", () => {
    assert.equal(resolveMode({ config }), "prod");
  });
  config.server.deployment_mode = "dev";
  await t.step("server.deployment_mode beats deployment.mode", () => {
    assert.equal(resolveMode({ config }), "dev");
  });
  await t.step("DEPLOYMENT_MODE beats the files", () => {
    assert.equal(resolveMode({ env: "prod", config }), "prod");
    assert.equal(
      resolveMode({ env: "", config }),
      "dev",
      "empty counts as unset",
    );
  });
  await t.step("--mode beats everything", () => {
    assert.equal(resolveMode({ flag: "dev", env: "prod", config }), "dev");
  });
  await t.step("a bad value names its source", () => {
    assert.throws(
      () => resolveMode({ env: "staging", config }),
      new RangeError(
        `Invalid DEPLOYMENT_MODE "staging": expected "dev" or "prod"`,
      ),
    );
    assert.throws(
      () => resolveMode({ flag: "test", config }),
      new RangeError(`Invalid --mode "test": expected "dev" or "prod"`),
    );
  });
});

Deno.test("server timeouts are the defaults of the worker ones; whereSet() names where a key was set", async () => {
  await withProject({
    "config/server.yaml":
      "server:\n  write_timeout_seconds: 5\n  read_timeout_seconds: 7\n  idle_timeout_seconds: 60\n" +
      "workers:\n  paths:\n    /slow:\n      write_timeout_seconds: 50\n",
  }, async (root) => {
    const { config, warnings } = await load(root);
    assert.equal(config.workers.default.write_timeout_seconds, 5);
    assert.equal(config.workers.default.read_timeout_seconds, 7);
    assert.equal(settingsFor("/slow/x", config).write_timeout_seconds, 50);
    assert.equal(settingsFor("/other", config).write_timeout_seconds, 5);
    assert.deepEqual(warnings, []);
    assert.equal(
      whereSet(config, "server.idle_timeout_seconds"),
      "config/server.yaml:4",
    );
    assert.equal(whereSet(config, "server.max_body_bytes"), undefined);
  });
  await withProject({
    "config/server.yaml":
      "server:\n  write_timeout_seconds: 5\nworkers:\n  default:\n    write_timeout_seconds: 9\n",
  }, async (root) => {
    const { config } = await load(root);
    assert.equal(config.workers.default.write_timeout_seconds, 9);
  });
});

// tests/testdata/config/ holds the examples as shipped in config/: the user's
// own config/ is theirs to edit (a deploy target added there must not fail the suite).
Deno.test("the example config files (as shipped in config/) load without warnings and spell out the defaults", async () => {
  const root = new URL("../../tests/testdata/", import.meta.url).pathname;
  const { config, files, warnings } = await load(root);
  assert.deepEqual(files, [
    join(root, "config/server.yaml"),
    join(root, "config/deployment.yaml"),
  ]);
  assert.deepEqual(warnings, []);
  assert.deepEqual(config, defaultConfig());
});

Deno.test("server.trusted_proxies takes CIDR ranges (default loopback); a bad entry is an error naming it", async () => {
  await withProject({}, async (root) => {
    const { config } = await load(root);
    assert.deepEqual(config.server.trusted_proxies, ["127.0.0.0/8", "::1/128"]);
  });
  await withProject({
    "config/server.yaml":
      `server:\n  trusted_proxies: ["10.0.0.0/8", "2001:db8::/32"]\n`,
  }, async (root) => {
    const { config } = await load(root);
    assert.deepEqual(config.server.trusted_proxies, [
      "10.0.0.0/8",
      "2001:db8::/32",
    ]);
  });
  const err = await loadError({
    "config/server.yaml": `server:\n  trusted_proxies: ["10.0.0.0/33"]\n`,
  });
  assert.match(err.message, /trusted_proxies/);
  assert.match(err.message, /CIDR range/);
});

Deno.test("deployment.targets.*.batch and keep_releases must be at least 1", async () => {
  const err = await loadError({
    "config/deployment.yaml":
      `deployment:\n  targets:\n    live:\n      path: /srv\n      keep_releases: 0\n`,
  });
  assert.match(err.message, /keep_releases/);
});
