import assert from "node:assert/strict";
import {
  type ChangeSet,
  type ChangeSource,
  classifyChanges,
  emptyChangeSet,
  type WorkerFacts,
} from "./classify.ts";

const ROOT = "/app";

/** The running workers of every case: a TypeScript one, a Go one, a prebuilt one. */
const WORKERS: ReadonlyMap<string, WorkerFacts> = new Map([
  ["index", {
    kind: "typescript",
    dir: "/app/workers/index",
    binPath: "/app/workers/index/bin/index.js",
  }],
  ["api", {
    kind: "typescript",
    dir: "/app/workers/api",
    binPath: "/app/workers/api/bin/api.js",
  }],
  ["gow", {
    kind: "go",
    dir: "/app/workers/gow",
    binPath: "/app/workers/gow/bin/gow",
  }],
  ["py", {
    kind: "binary",
    dir: "/app/workers/py",
    binPath: "/app/workers/py/bin/py",
  }],
]);

/** The module graphs: `lib/shared.ts` is in both TypeScript workers'. */
const GRAPH: Record<string, string[]> = {
  "/app/workers/index/src/main.ts": ["index"],
  "/app/workers/index/src/page.tsx": ["index"],
  "/app/lib/shared.ts": ["index", "api"],
  "/app/src/worker/mod.ts": ["index", "api"],
  "/app/config/routes.json": ["api"],
};

interface Case {
  /** The SPEC §6 row, as a sentence. */
  name: string;
  source: ChangeSource;
  paths: string[];
  /** What differs from an empty ChangeSet. */
  expect: Partial<Omit<ChangeSet, "source">>;
  workersDir?: string;
  workers?: ReadonlyMap<string, WorkerFacts>;
  configFiles?: string[];
  serverFiles?: string[];
  discovered?: string[];
}

const DEV: Case[] = [
  {
    name:
      "a worker source change rebuilds only the workers whose graph holds it",
    source: "watch",
    paths: ["/app/workers/index/src/page.tsx"],
    expect: { builds: ["index"], early: true },
  },
  {
    name: "a shared module rebuilds every worker whose graph holds it",
    source: "watch",
    paths: ["/app/lib/shared.ts"],
    expect: { builds: ["index", "api"], early: true },
  },
  {
    name: "the worker SDK under src/worker/ rebuilds its users, not the server",
    source: "watch",
    paths: ["/app/src/worker/mod.ts"],
    expect: { builds: ["index", "api"], early: true },
  },
  {
    name:
      "a new file under a worker's src/ rebuilds that worker before any graph holds it",
    source: "watch",
    paths: ["/app/workers/api/src/new.ts"],
    expect: { builds: ["api"], early: true },
  },
  {
    name: "a test file beside a worker's sources rebuilds nothing",
    source: "watch",
    paths: ["/app/workers/api/src/new_test.ts"],
    expect: { early: true },
  },
  {
    name: "a source in no graph and outside workers rebuilds nothing",
    source: "watch",
    paths: ["/app/scripts/tool.ts"],
    expect: { early: true },
  },
  {
    name:
      "a JSON file in config/ that a worker imports rebuilds it (not a config change)",
    source: "watch",
    paths: ["/app/config/routes.json"],
    expect: { builds: ["api"] },
  },
  {
    name: "a Go source rebuilds its Go worker with the Go builder",
    source: "watch",
    paths: ["/app/workers/gow/src/main.go"],
    expect: { builds: ["gow"], goBuilds: ["gow"] },
  },
  {
    name: "a go.mod above the workers rebuilds every Go worker",
    source: "watch",
    paths: ["/app/go.mod"],
    expect: { builds: ["gow"], goBuilds: ["gow"] },
  },
  {
    name:
      "a TypeScript file in a Go worker's src/ names it, but only goBuilds rebuild Go",
    source: "watch",
    paths: ["/app/workers/gow/src/tool.ts"],
    expect: { builds: ["gow"], early: true },
  },
  {
    name:
      "a CSS change in public/ swaps the stylesheet and drops the static cache",
    source: "watch",
    paths: ["/app/workers/index/public/css/site.css"],
    expect: { statics: ["index"], css: ["/static/index/css/site.css"] },
  },
  {
    name: "another public/ file reloads the page and drops the static cache",
    source: "watch",
    paths: ["/app/workers/index/public/logo.svg"],
    expect: { statics: ["index"], pageReload: true },
  },
  {
    name: "a private/ change signals the worker (or replaces it, SPEC §4)",
    source: "watch",
    paths: ["/app/workers/api/private/keys.json"],
    expect: { signals: ["api"] },
  },
  {
    name: "a prebuilt worker's new binary replaces it (binary-changed)",
    source: "watch",
    paths: ["/app/workers/py/bin/py"],
    expect: { replaces: [{ worker: "py", reason: "binary-changed" }] },
  },
  {
    name: "a bundle tqserver built itself triggers nothing",
    source: "watch",
    paths: ["/app/workers/index/bin/index.js"],
    expect: {},
  },
  {
    name: "other files in a worker's bin/ trigger nothing",
    source: "watch",
    paths: ["/app/workers/py/bin/py.tmp-1"],
    expect: {},
  },
  {
    name: "config/*.yaml applies the config without a server restart",
    source: "watch",
    paths: ["/app/config/server.yaml"],
    expect: { config: true },
  },
  {
    name: "a YAML file below config/ is not config",
    source: "watch",
    paths: ["/app/config/old/server.yaml"],
    expect: {},
  },
  {
    name: "a server source change restarts the server",
    source: "watch",
    paths: ["/app/src/proxy/proxy.ts"],
    expect: { server: true },
  },
  {
    name: "main.ts restarts the server",
    source: "watch",
    paths: ["/app/main.ts"],
    expect: { server: true },
  },
  {
    name: "a server test file does not restart the server",
    source: "watch",
    paths: ["/app/src/proxy/proxy_test.ts"],
    expect: {},
  },
  {
    name: "a new worker folder runs the reload check",
    source: "watch",
    paths: ["/app/workers/blog"],
    expect: { structure: true },
  },
  {
    name: "a file directly in a worker folder runs the reload check",
    source: "watch",
    paths: ["/app/workers/api/worker.yaml"],
    expect: { structure: true },
  },
  {
    name:
      "the source of a worker not running yet is a new worker, built once it is known",
    source: "watch",
    paths: ["/app/workers/blog/src/main.ts"],
    expect: { builds: ["blog"], structure: true, early: true },
  },
  {
    name: "a batch of several changes is one ChangeSet",
    source: "watch",
    paths: [
      "/app/workers/index/src/main.ts",
      "/app/workers/index/public/site.css",
      "/app/workers/api/private/a.txt",
      "/app/config/server.yaml",
    ],
    expect: {
      builds: ["index"],
      statics: ["index"],
      css: ["/static/index/site.css"],
      signals: ["api"],
      config: true,
    },
  },
  {
    name: "a workers_dir other than workers/ is followed",
    source: "watch",
    workersDir: "./apps",
    workers: new Map([["index", {
      kind: "typescript",
      dir: "/app/apps/index",
      binPath: "/app/apps/index/bin/index.js",
    }]]),
    paths: ["/app/apps/index/private/a.txt", "/app/apps/index/src/x.ts"],
    expect: { signals: ["index"], builds: ["index"] },
  },
];

const PROD: Case[] = [
  {
    name: "nothing newer changes nothing",
    source: "scan",
    paths: [],
    discovered: ["index", "api", "gow", "py"],
    expect: {},
  },
  {
    name: "a worker binary newer replaces it (binary-changed), a built one too",
    source: "scan",
    paths: ["/app/workers/index/bin/index.js", "/app/workers/py/bin/py"],
    discovered: ["index", "api", "gow", "py"],
    expect: {
      replaces: [
        { worker: "index", reason: "binary-changed" },
        { worker: "py", reason: "binary-changed" },
      ],
    },
  },
  {
    name: "private/ newer signals or replaces the worker",
    source: "scan",
    paths: ["/app/workers/api/private"],
    discovered: ["index", "api", "gow", "py"],
    expect: { signals: ["api"] },
  },
  {
    name: "public/ newer restarts nothing, drops the static cache",
    source: "scan",
    paths: ["/app/workers/index/public"],
    discovered: ["index", "api", "gow", "py"],
    expect: { statics: ["index"] },
  },
  {
    name:
      "a changed config file (wherever it lives) re-reads and applies the config",
    source: "scan",
    paths: ["/etc/tq/server.yaml"],
    configFiles: ["/etc/tq/server.yaml", "/etc/tq/deployment.yaml"],
    discovered: ["index", "api", "gow", "py"],
    expect: { config: true },
  },
  {
    name: "a new worker folder starts it",
    source: "scan",
    paths: [],
    discovered: ["index", "api", "gow", "py", "blog"],
    expect: { adds: ["blog"] },
  },
  {
    name: "a removed worker folder stops it",
    source: "scan",
    paths: [],
    discovered: ["index", "gow", "py"],
    expect: { removes: ["api"] },
  },
  {
    name: "a newer server binary self-upgrades",
    source: "scan",
    paths: ["/usr/local/bin/tqserver"],
    serverFiles: ["/usr/local/bin/tqserver"],
    discovered: ["index", "api", "gow", "py"],
    expect: { server: true },
  },
  {
    name: "a newer main module (run from source) self-upgrades",
    source: "scan",
    paths: ["/app/main.ts"],
    serverFiles: ["/app/main.ts"],
    discovered: ["index", "api", "gow", "py"],
    expect: { server: true },
  },
  {
    name: "a worker folder outside workers_dir is found by its spec",
    source: "scan",
    paths: ["/srv/w/index/public", "/srv/w/index/private"],
    workers: new Map([["index", {
      kind: "typescript",
      dir: "/srv/w/index",
      binPath: "/srv/w/index/bin/index.js",
    }]]),
    discovered: ["index"],
    expect: { statics: ["index"], signals: ["index"] },
  },
  {
    name: "a worker folder under src/ is a worker's, not the server's code",
    source: "scan",
    paths: ["/app/src/apps/index/public"],
    workersDir: "src/apps",
    workers: new Map([["index", {
      kind: "typescript",
      dir: "/app/src/apps/index",
      binPath: "/app/src/apps/index/bin/index.js",
    }]]),
    discovered: ["index"],
    expect: { statics: ["index"] },
  },
  {
    name: "everything at once is one ChangeSet",
    source: "scan",
    paths: [
      "/app/config/server.yaml",
      "/app/workers/gow/bin/gow",
      "/app/workers/index/public",
      "/app/workers/index/private",
    ],
    configFiles: ["/app/config/server.yaml"],
    discovered: ["index", "gow", "py", "blog"],
    expect: {
      config: true,
      replaces: [{ worker: "gow", reason: "binary-changed" }],
      statics: ["index"],
      signals: ["index"],
      adds: ["blog"],
      removes: ["api"],
    },
  },
];

for (const [mode, cases] of [["dev", DEV], ["prod", PROD]] as const) {
  Deno.test(`classifyChanges() covers every SPEC §6 row of ${mode}`, async (t) => {
    for (const c of cases) {
      await t.step(c.name, () => {
        const got = classifyChanges(c.paths, {
          source: c.source,
          root: ROOT,
          workersDir: c.workersDir ?? "workers",
          workers: c.workers ?? WORKERS,
          dependents: (path) => GRAPH[path] ?? [],
          ...(c.configFiles ? { configFiles: new Set(c.configFiles) } : {}),
          ...(c.serverFiles ? { serverFiles: new Set(c.serverFiles) } : {}),
          ...(c.discovered ? { discovered: c.discovered } : {}),
        });
        assert.deepEqual(got, { ...emptyChangeSet(c.source), ...c.expect });
      });
    }
  });
}

Deno.test("classifyChanges() reads nothing: it decides on paths that do not exist", () => {
  const started = performance.now();
  for (let i = 0; i < 1000; i++) {
    classifyChanges([`/nowhere/workers/w${i}/src/main.ts`], {
      source: "watch",
      root: "/nowhere",
      workersDir: "workers",
      workers: new Map(),
    });
  }
  // A thousand batches in well under a second: no stat, no read.
  assert.ok(performance.now() - started < 1000);
});
