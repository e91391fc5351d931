/**
 * Instances benchmark: a CPU-bound worker (`bench/_cpu.ts`, about 1 ms of
 * work per request, calibrated on this machine before the run) through
 * tqserver with `instances: 1` and with `instances: 2`. Both servers run for
 * the whole benchmark; the rounds are interleaved (each round measures both,
 * in alternating order, so both see the same machine load) and the medians
 * are compared. The bar: 2 instances serve at least 1.5x the requests of one
 * (on a 2-core machine, where wrk and the proxy need CPU too).
 *
 * Needs `wrk` (Debian/Ubuntu: `apt-get install -y wrk`).
 *
 * ```sh
 * deno task bench:instances
 * deno run -A bench/instances_bench.ts --rounds 5 --duration 3 --connections 8 --work-ms 1
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { hasWrk, runWrk } from "./_wrk.ts";
import { freePort, spawnPeer, tqserverArgs } from "./_peers.ts";
import { work } from "./_cpu_work.ts";

/** Throughput with 2 instances must be at least this multiple of one. */
const BAR = 1.5;

const benchDir = dirname(fileURLToPath(import.meta.url));
const encoder = new TextEncoder();

function say(line = ""): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** xorshift rounds that take `ms` on one core here: the fastest of several timed runs. */
function calibrate(ms: number): number {
  const probe = 200_000;
  let seed = work(1, probe * 5); // Warm up: the optimized loop is what workers run.
  let best = Infinity;
  for (let i = 0; i < 20; i++) {
    const start = performance.now();
    seed = work(seed, probe);
    best = Math.min(best, performance.now() - start);
  }
  if (seed === 0) say("(seed reached 0)"); // Keeps the loop's result alive.
  return Math.max(1, Math.round(probe * ms / best));
}

/** Busy and total CPU time of the machine so far, in clock ticks (/proc/stat). */
function machineTicks(): { busy: number; total: number } {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
    const t = line.trim().split(/\s+/).slice(1).map(Number);
    const total = t.reduce((a, b) => a + b, 0);
    // idle and iowait are not busy.
    return { busy: total - t[3]! - (t[4] ?? 0), total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

/**
 * CPU time in clock ticks of this process and every process below it (the
 * servers and their workers), plus what its reaped children used (the wrk
 * runs).
 */
function ownTicks(): number {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
      parent.set(pid, Number(f[1]));
      const own = Number(f[11]) + Number(f[12]);
      ticks.set(
        pid,
        pid === Deno.pid ? own + Number(f[13]) + Number(f[14]) : own,
      );
    } catch {
      // Gone meanwhile.
    }
  }
  let sum = 0;
  for (const [pid, t] of ticks) {
    for (
      let p: number | undefined = pid;
      p !== undefined && p > 1;
      p = parent.get(p)
    ) {
      if (p === Deno.pid) {
        sum += t;
        break;
      }
    }
  }
  return sum;
}

/** Share of the machine's CPU time that processes outside this benchmark used between two readings. */
function othersShare(
  before: { machine: { busy: number; total: number }; own: number },
  after: { machine: { busy: number; total: number }; own: number },
): number {
  const total = after.machine.total - before.machine.total;
  const busy = after.machine.busy - before.machine.busy;
  return Math.max(0, busy - (after.own - before.own)) / total;
}

function reading() {
  return { machine: machineTicks(), own: ownTicks() };
}

interface Server {
  instances: number;
  base: string;
  stop(): Promise<void>;
}

/** tqserver in prod mode with one worker `index` (route `/`) running `_cpu.ts` on `instances` instances. */
async function startServer(
  instances: number,
  iterations: number,
): Promise<Server> {
  const root = await Deno.makeTempDir({ prefix: "tq_bench_inst_" });
  const worker = join(root, "workers", "index");
  await Deno.mkdir(join(worker, "bin"), { recursive: true });
  await Deno.mkdir(join(root, "config"), { recursive: true });
  for (const file of ["_cpu.ts", "_cpu_work.ts"]) {
    await Deno.copyFile(join(benchDir, file), join(worker, file));
  }
  const bin = join(worker, "bin", "index");
  await Deno.writeTextFile(
    bin,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -A _cpu.ts\n`,
  );
  await Deno.chmod(bin, 0o755);
  await Deno.writeTextFile(
    join(root, "config", "server.yaml"),
    `server:\n  admin:\n    enabled: false\nworkers:\n  default:\n` +
      `    instances: ${instances}\n    env:\n      CPU_ITERATIONS: "${iterations}"\n`,
  );
  const port = freePort();
  const peer = await spawnPeer(
    `tqserver with ${instances} instances`,
    `http://127.0.0.1:${port}`,
    Deno.execPath(),
    tqserverArgs(root, port),
    { cwd: root, env: {}, cleanup: root },
  );
  return { instances, base: peer.base, stop: peer.stop };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "5" },
      duration: { type: "string", default: "3" },
      connections: { type: "string", default: "8" },
      threads: { type: "string", default: "1" },
      "work-ms": { type: "string", default: "1" },
    },
  });
  if (!(await hasWrk())) {
    say("wrk is not installed: the instances benchmark is skipped");
    Deno.exit(0);
  }
  const rounds = Number(values.rounds);
  const wrk = {
    threads: Number(values.threads),
    connections: Number(values.connections),
    duration: Number(values.duration),
  };
  const iterations = calibrate(Number(values["work-ms"]));
  say(
    `instances benchmark: ${iterations} xorshift rounds per request (~${
      values["work-ms"]
    } ms on one core here), ${navigator.hardwareConcurrency} CPUs, ` +
      `wrk -t${wrk.threads} -c${wrk.connections} -d${wrk.duration}s, ${rounds} rounds`,
  );
  const servers = [
    await startServer(1, iterations),
    await startServer(2, iterations),
  ];
  const rps = new Map<number, number[]>(servers.map((s) => [s.instances, []]));
  const others: number[] = [];
  try {
    // Warm-up: V8 optimizes the work loop in every instance.
    for (const s of servers) {
      await runWrk(s.base + "/", { ...wrk, duration: 1 });
    }
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      const line: string[] = [];
      const start = reading();
      for (const s of order) {
        const r = await runWrk(s.base + "/", wrk);
        const bad = r.non2xx + r.socketErrors;
        rps.get(s.instances)!.push(r.rps);
        line.push(
          `instances ${s.instances}: ${r.rps.toFixed(0)} req/s, p99 ${
            r.p99Ms.toFixed(1)
          } ms${bad ? ` (${bad} failed)` : ""}`,
        );
      }
      const share = othersShare(start, reading());
      others.push(share);
      const ratio = rps.get(2)!.at(-1)! / rps.get(1)!.at(-1)!;
      say(
        `round ${round + 1}: ${line.join("; ")}; ratio ${
          ratio.toFixed(2)
        }x; other processes used ${(share * 100).toFixed(0)}% of the CPUs`,
      );
    }
  } finally {
    for (const s of servers) await s.stop();
  }
  const one = median(rps.get(1)!);
  const two = median(rps.get(2)!);
  const ratio = two / one;
  say(
    `median: instances 1 ${one.toFixed(0)} req/s, instances 2 ${
      two.toFixed(0)
    } req/s, ratio ${ratio.toFixed(2)}x (bar ${BAR}x): ${
      ratio >= BAR ? "ok" : "BELOW THE BAR"
    }`,
  );
  const busy = median(others);
  if (busy > 0.1) {
    say(
      `note: other processes used a median ${
        (busy * 100).toFixed(0)
      }% of the CPUs during the rounds; a second instance can only use what is left`,
    );
  }
}
