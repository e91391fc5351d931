import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultConfig } from "./defaults.ts";
import { type ConfigChange, ConfigStore } from "./store.ts";
import { ConfigError } from "./types.ts";

async function project(serverYaml?: string): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "tq_store_" });
  if (serverYaml !== undefined) {
    await Deno.mkdir(join(root, "config"));
    await Deno.writeTextFile(join(root, "config", "server.yaml"), serverYaml);
  }
  return root;
}

const write = (root: string, text: string) =>
  Deno.writeTextFile(join(root, "config", "server.yaml"), text);

Deno.test("ConfigStore resolves server.host by mode and keeps a host a file set", () => {
  const root = "/nowhere";
  const dev = new ConfigStore(defaultConfig(), { mode: "dev", root });
  assert.equal(dev.current.server.host, "127.0.0.1");
  const prod = new ConfigStore(defaultConfig(), { mode: "prod", root });
  assert.equal(prod.current.server.host, "0.0.0.0");
  const set = defaultConfig();
  set.server.host = "10.0.0.1";
  assert.equal(
    new ConfigStore(set, { mode: "dev", root }).current.server.host,
    "10.0.0.1",
  );
});

Deno.test("ConfigStore.read() validates a candidate with the mode's defaults and leaves the running config", async (t) => {
  const root = await project("server:\n  port: 8090\n");
  try {
    const store = new ConfigStore(defaultConfig(), { mode: "prod", root });
    const running = store.current;
    await t.step("a valid candidate is read, not applied", async () => {
      const { config } = await store.read();
      assert.equal(config.server.port, 8090);
      assert.equal(config.server.host, "0.0.0.0");
      assert.equal(store.current, running);
    });
    await t.step(
      "an invalid candidate throws ConfigError naming file and key",
      async () => {
        await write(root, "server:\n  port: eighty\n");
        const err = await store.read().catch((e) => e);
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /config\/server\.yaml/);
        assert.match(err.message, /server\.port/);
        assert.equal(store.current, running);
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("ConfigStore.swap() makes the candidate current and tells every subscriber what changed", () => {
  const store = new ConfigStore(defaultConfig(), {
    mode: "dev",
    root: "/nowhere",
  });
  const before = store.current;
  const seen: ConfigChange[] = [];
  const order: string[] = [];
  store.subscribe((change) => {
    seen.push(change);
    order.push("supervisor");
  });
  const stop = store.subscribe(() => order.push("listeners"));
  const next = defaultConfig();
  next.server.static.cache_max_age_seconds = 60;
  next.workers.default.max_requests = 5;
  next.workers.paths = { "/api": { max_requests: 1 } };
  const change = store.swap(next);
  assert.equal(store.current, next);
  assert.equal(next.server.host, "127.0.0.1", "mode defaults resolved");
  assert.deepEqual(order, ["supervisor", "listeners"]);
  assert.equal(seen[0], change);
  assert.equal(change.previous, before);
  assert.equal(change.current, next);
  assert.deepEqual(change.keys, [
    "server.static.cache_max_age_seconds",
    "workers.default.max_requests",
    "workers.paths",
  ]);
  assert.ok(change.touches("server.static"));
  assert.ok(change.touches("server"));
  assert.ok(!change.touches("server.compression"));
  assert.ok(!change.touches("server.stat"));
  stop();
  const same = store.swap(structuredClone(next));
  assert.deepEqual(same.keys, []);
  assert.deepEqual(order, ["supervisor", "listeners", "supervisor"]);
});

Deno.test("ConfigStore.swap() tells every subscriber even when one throws, then rethrows", () => {
  const store = new ConfigStore(defaultConfig(), {
    mode: "dev",
    root: "/nowhere",
  });
  let told = 0;
  store.subscribe(() => {
    throw new Error("boom");
  });
  store.subscribe(() => told++);
  const next = defaultConfig();
  assert.throws(() => store.swap(next), /boom/);
  assert.equal(told, 1);
  assert.equal(store.current, next);
});

Deno.test("ConfigStore.reload() keeps the old config when the candidate is rejected", async (t) => {
  const root = await project("server:\n  port: 8090\n");
  try {
    const store = new ConfigStore(defaultConfig(), { mode: "prod", root });
    const running = store.current;
    let told = 0;
    store.subscribe(() => told++);
    await t.step("rejected by validation", async () => {
      await write(
        root,
        "workers:\n  port_range_start: 9500\n  port_range_end: 9400\n",
      );
      await assert.rejects(store.reload(), ConfigError);
      assert.equal(store.current, running);
      assert.equal(told, 0);
    });
    await t.step(
      "rejected by the caller's check (its routes, say)",
      async () => {
        await write(root, "server:\n  port: 8091\n");
        await assert.rejects(
          store.reload(() => {
            throw new Error("route clash");
          }),
          /route clash/,
        );
        assert.equal(store.current, running);
        assert.equal(told, 0);
      },
    );
    await t.step("accepted: swapped in, subscribers told", async () => {
      const { accepted, change } = await store.reload((c) =>
        c.config.server.port
      );
      assert.equal(accepted, 8091);
      assert.equal(store.current.server.port, 8091);
      assert.deepEqual(change.keys, ["server.port"]);
      assert.equal(told, 1);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("ConfigStore.paths() names server.yaml and deployment.yaml beside it", () => {
  const dflt = new ConfigStore(defaultConfig(), { mode: "dev", root: "/p" });
  assert.deepEqual(dflt.paths(), [
    "/p/config/server.yaml",
    "/p/config/deployment.yaml",
  ]);
  const given = new ConfigStore(defaultConfig(), {
    mode: "dev",
    root: "/p",
    configFile: "etc/tq.yaml",
  });
  assert.deepEqual(given.paths(), ["/p/etc/tq.yaml", "/p/etc/deployment.yaml"]);
});
