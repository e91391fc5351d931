// End-to-end: a worker with several instances (SPEC §5) under load, with a
// Python stdlib worker (one we did not write the HTTP stack of): a rolling
// replace and a SIGKILLed instance fail no request.
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeProject, type Project, startServer, waitFor } from "./_helpers.ts";
import { startLoad } from "./_load.ts";
import { hasCommand, PY_WORKER, writeScriptWorker } from "./_workers.ts";

const PYTHON = hasCommand("python3");

interface InstanceJson {
  pid: number;
  port: number;
  status: string;
  started_at: string;
  requests: number;
  in_flight: number;
}

interface WorkerJson {
  name: string;
  status: string;
  restarts: number;
  last_restart_reason: string | null;
  instances: InstanceJson[];
}

async function worker(admin: string, name: string): Promise<WorkerJson> {
  const res = await fetch(`${admin}/api/status`, {
    signal: AbortSignal.timeout(5000),
  });
  const status = await res.json();
  return status.workers.find((w: WorkerJson) => w.name === name);
}

function healthyPids(w: WorkerJson): number[] {
  return w.instances.filter((i) => i.status === "healthy").map((i) => i.pid);
}

/** A project whose worker `py` (route /py) runs Python's http.server, 3 instances. */
function pythonProject(): Project {
  const project = makeProject({
    workers: {},
    serverYaml: "  default:\n    instances: 3\n",
  });
  writeScriptWorker(project.root, "py", ["python3", PY_WORKER]);
  return project;
}

/** Samples `/api/status` every few ms until stopped: the fewest healthy instances seen, and every instance status seen. */
function sampleHealthy(admin: string, name: string) {
  let fewest = Infinity;
  let samples = 0;
  const states = new Set<string>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const w = await worker(admin, name);
      fewest = Math.min(fewest, healthyPids(w).length);
      for (const i of w.instances) states.add(i.status);
      samples++;
      // The sampling rate: what is measured is the server as it runs.
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { fewest, samples, states };
    },
  };
}

Deno.test({
  name:
    "a 3-instance worker under load: a rolling replace fails no request and never has fewer than 2 instances healthy",
  ignore: !PYTHON,
  fn: async () => {
    const project = pythonProject();
    const server = await startServer(project);
    try {
      const before = await worker(server.admin, "py");
      assert.equal(before.status, "healthy");
      assert.equal(healthyPids(before).length, 3);
      const load = startLoad(`${server.base}/py/slow?ms=5`, {
        concurrency: 6,
        maxMs: 30_000,
      });
      await waitFor(() => load.count() > 50, 10_000, "load to start");
      const sampler = sampleHealthy(server.admin, "py");
      // A new binary (the same program, a new mtime), then a reload.
      writeScriptWorker(project.root, "py", ["python3", PY_WORKER], {
        BUILD: "2",
      });
      const bin = join(project.root, "workers", "py", "bin", "py");
      const later = new Date(Date.now() + 2000);
      Deno.utimeSync(bin, later, later);
      const res = await fetch(`${server.admin}/api/reload`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        signal: AbortSignal.timeout(30_000),
      });
      const reload = await res.json();
      assert.equal(reload.ok, true, JSON.stringify(reload));
      const served = load.count();
      await waitFor(() => load.count() > served + 50, 10_000, "more load");
      const sampled = await sampler.stop();
      const result = await load.stop();
      assert.equal(result.failed, 0, result.errors.join("\n"));
      assert.ok(sampled.samples > 5, `only ${sampled.samples} status samples`);
      assert.ok(
        sampled.fewest >= 2,
        `${sampled.fewest} instances healthy at one point`,
      );
      assert.ok(
        sampled.states.has("stopping") || sampled.states.has("starting"),
        `the roll was seen (${[...sampled.states].join(", ")})`,
      );
      const after = await worker(server.admin, "py");
      const fresh = healthyPids(after);
      assert.equal(fresh.length, 3);
      for (const pid of healthyPids(before)) {
        assert.ok(!fresh.includes(pid), `old instance ${pid} still serves`);
      }
      assert.equal(after.restarts, 1);
      assert.equal(after.last_restart_reason, "binary-changed");
      assert.match(server.logs(), /worker instance replaced/);
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});

Deno.test({
  name:
    "one of 3 instances SIGKILLed under load: no GET fails and it alone is restarted",
  ignore: !PYTHON,
  fn: async () => {
    const project = pythonProject();
    const server = await startServer(project);
    try {
      const before = await worker(server.admin, "py");
      const pids = healthyPids(before);
      assert.equal(pids.length, 3);
      // Slow answers keep requests in flight on every instance at the kill.
      const load = startLoad(`${server.base}/py/slow?ms=20`, {
        concurrency: 9,
        maxMs: 30_000,
      });
      await waitFor(() => load.count() > 50, 10_000, "load to start");
      const victim = pids[1]!;
      Deno.kill(victim, "SIGKILL");
      const after = await waitFor(
        async () => {
          const w = await worker(server.admin, "py");
          const now = healthyPids(w);
          return now.length === 3 && !now.includes(victim) ? w : undefined;
        },
        10_000,
        "a third instance to replace the killed one",
      );
      const served = load.count();
      await waitFor(() => load.count() > served + 50, 10_000, "more load");
      const result = await load.stop();
      assert.equal(result.failed, 0, result.errors.join("\n"));
      const now = healthyPids(after);
      for (const pid of pids.filter((p) => p !== victim)) {
        assert.ok(now.includes(pid), `instance ${pid} was restarted too`);
      }
      assert.equal(after.restarts, 1);
      assert.equal(after.last_restart_reason, "crashed");
      await waitFor(
        async () => (await worker(server.admin, "py")).status === "healthy",
        5000,
        "the worker to be healthy again",
      );
    } finally {
      await server.stop();
      project.cleanup();
    }
  },
});
