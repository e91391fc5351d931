import assert from "node:assert/strict";
import { defaultWorkerSettings, type WorkerSpec } from "../config/mod.ts";
import { workerEnv } from "./_env.ts";

function spec(kind: WorkerSpec["kind"], env: Record<string, string> = {}) {
  return {
    name: "w",
    dir: "/p/workers/w",
    route: "/w",
    kind,
    entry: undefined,
    binPath: "/p/workers/w/bin/w",
    settings: {
      ...defaultWorkerSettings(),
      go_max_procs: 2,
      go_mem_limit: "512MiB",
      env,
    },
  } satisfies WorkerSpec;
}

const options = {
  base: { HOME: "/home/x" },
  mode: "dev" as const,
  memoryMb: 0,
};

Deno.test("workerEnv() turns go_max_procs / go_mem_limit into GOMAXPROCS / GOMEMLIMIT for Go and prebuilt workers only", () => {
  for (const kind of ["go", "binary"] as const) {
    const env = workerEnv(spec(kind), 9001, options);
    assert.equal(env.GOMAXPROCS, "2", kind);
    assert.equal(env.GOMEMLIMIT, "512MiB", kind);
    assert.equal(env.TQ_PORT, "9001");
  }
  const ts = workerEnv(spec("typescript"), 9001, options);
  assert.equal(ts.GOMAXPROCS, undefined);
  assert.equal(ts.GOMEMLIMIT, undefined);
  // An explicit env entry still wins over the setting.
  const own = workerEnv(spec("go", { GOMAXPROCS: "7" }), 9001, options);
  assert.equal(own.GOMAXPROCS, "7");
  const unset = workerEnv(
    { ...spec("go"), settings: defaultWorkerSettings() },
    9001,
    options,
  );
  assert.equal(unset.GOMAXPROCS, undefined, "0 means Go's default");
  assert.equal(unset.GOMEMLIMIT, undefined, '"" means none');
});
