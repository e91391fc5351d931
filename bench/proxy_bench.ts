/**
 * Proxy benchmark: the same worker (`bench/_hello.ts`) measured directly and
 * through tqserver (`main.ts --mode prod`), `deno-relay` (`bench/_relay.ts`:
 * the least a Deno.serve relay can cost, the floor tqserver is held
 * against), nginx (upstream `keepalive`) and Caddy (`reverse_proxy`), with
 * `wrk -t1 -c50`, rounds interleaved (every
 * peer once per round, so all see the same machine load), medians reported:
 *
 * - `hello`: GET of a 14-byte body;
 * - `post4k`: a 4 KiB POST (wrk `-s` script), the worker reads it whole;
 * - `download`: GET of a 10 MiB body (MiB/s);
 *
 * plus p99 latency, and the RSS of tqserver and of `deno-relay` (a bare
 * Deno relay: the floor) idle and after each workload. Non-2xx
 * answers and socket errors never count as throughput and are flagged. A
 * peer whose binary is missing is skipped with a line saying so.
 *
 * Needs `wrk` (Debian/Ubuntu: `apt-get install -y wrk nginx caddy`).
 *
 * ```sh
 * deno task bench
 * deno run -A bench/proxy_bench.ts --rounds 3 --duration 3 --connections 50 --threads 1
 * deno run -A bench/proxy_bench.ts --only hello --peers direct,tqserver
 * # profile tqserver under load (the profile is written when it stops):
 * TQ_BENCH_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" deno run -A bench/proxy_bench.ts --only hello
 * # another server.yaml for tqserver, e.g. compression off:
 * TQ_BENCH_YAML=$'server:\n  admin:\n    enabled: false\n  compression:\n    enabled: false\n' deno task bench
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { hasWrk, runWrk, type WrkResult } from "./_wrk.ts";
import {
  hasCommand,
  type Peer,
  rssMiB,
  startCaddy,
  startDirect,
  startNginx,
  startRelay,
  startTqserver,
} from "./_peers.ts";

/** Bars of the issue: share of direct throughput tqserver must reach. */
const BARS: Record<string, number> = { hello: 0.30, post4k: 0.25 };
/** tqserver's RSS after the run must stay under this. */
const RSS_BAR_MIB = 100;

interface Workload {
  name: string;
  path: string;
  script?: string;
  /** Report MiB/s instead of req/s. */
  bytes?: boolean;
}

const encoder = new TextEncoder();

function say(line = ""): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

function median(values: number[]): number {
  const s = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function fmt(n: number, digits = 0): string {
  return Number.isNaN(n) ? "-" : n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

async function postScript(dir: string): Promise<string> {
  const path = join(dir, "post4k.lua");
  await Deno.writeTextFile(
    path,
    `wrk.method = "POST"
wrk.body = string.rep("a", 4096)
wrk.headers["Content-Type"] = "application/octet-stream"
`,
  );
  return path;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      duration: { type: "string", default: "3" },
      connections: { type: "string", default: "50" },
      threads: { type: "string", default: "1" },
      only: { type: "string", default: "hello,post4k,download" },
      peers: {
        type: "string",
        default: "direct,tqserver,deno-relay,nginx,caddy",
      },
    },
  });
  const rounds = Number(values.rounds);
  const wrk = {
    threads: Number(values.threads),
    connections: Number(values.connections),
    duration: Number(values.duration),
  };
  if (!await hasWrk()) {
    say("wrk is not installed. Install it and run again:");
    say("  Debian/Ubuntu: sudo apt-get install -y wrk");
    say("  macOS:         brew install wrk");
    return 1;
  }
  const tmp = await Deno.makeTempDir({ prefix: "tq_bench_wrk_" });
  const all: Workload[] = [
    { name: "hello", path: "/" },
    { name: "post4k", path: "/post", script: await postScript(tmp) },
    { name: "download", path: "/10mb", bytes: true },
  ];
  const wanted = new Set(values.only.split(","));
  const workloads = all.filter((w) => wanted.has(w.name));
  const peerNames = values.peers.split(",");

  const peers: Peer[] = [];
  try {
    const direct = await startDirect();
    peers.push(direct);
    if (peerNames.includes("tqserver")) peers.push(await startTqserver());
    if (peerNames.includes("deno-relay")) {
      peers.push(await startRelay(direct.base));
    }
    if (peerNames.includes("nginx")) {
      if (await hasCommand("nginx")) peers.push(await startNginx(direct.base));
      else say("skipped nginx: not installed (apt-get install -y nginx)");
    }
    if (peerNames.includes("caddy")) {
      if (await hasCommand("caddy", "version")) {
        peers.push(await startCaddy(direct.base));
      } else say("skipped caddy: not installed (apt-get install -y caddy)");
    }
    const tq = peers.find((p) => p.name === "tqserver");
    say(
      `wrk -t${wrk.threads} -c${wrk.connections} -d${wrk.duration}s, ${rounds} rounds interleaved, ` +
        `${navigator.hardwareConcurrency} CPUs, peers: ${
          peers.map((p) => p.name).join(", ")
        }`,
    );
    const relay = peers.find((p) => p.name === "deno-relay");
    const rssIdle = tq ? rssMiB(tq.pid) : NaN;
    // RSS after each workload, tqserver's next to the bare relay's (the floor).
    const rssRows: string[] = [
      `| after | tqserver MiB | deno-relay MiB |`,
      `| --- | ---: | ---: |`,
      `| start (idle) | ${fmt(rssIdle, 1)} | ${
        fmt(relay ? rssMiB(relay.pid) : NaN, 1)
      } |`,
    ];

    const results = new Map<string, WrkResult[]>();
    for (const w of workloads) {
      // Warm every path (JIT, keep-alive pools) before measuring.
      for (const peer of peers) {
        await runWrk(peer.base + w.path, {
          ...wrk,
          duration: 1,
          ...(w.script ? { script: w.script } : {}),
        });
      }
      for (let round = 1; round <= rounds; round++) {
        for (const peer of peers) {
          const r = await runWrk(peer.base + w.path, {
            ...wrk,
            ...(w.script ? { script: w.script } : {}),
          });
          const key = `${w.name}/${peer.name}`;
          results.set(key, [...(results.get(key) ?? []), r]);
          const flag = r.non2xx || r.socketErrors
            ? `  <-- ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`
            : "";
          say(
            `  ${w.name.padEnd(8)} round ${round} ${peer.name.padEnd(8)} ${
              fmt(w.bytes ? r.mibPerSec : r.rps).padStart(9)
            } ${w.bytes ? "MiB/s" : "req/s"}  p99 ${
              fmt(r.p99Ms, 2).padStart(7)
            } ms${flag}`,
          );
        }
      }
      rssRows.push(
        `| ${w.name} | ${fmt(tq ? rssMiB(tq.pid) : NaN, 1)} | ${
          fmt(relay ? rssMiB(relay.pid) : NaN, 1)
        } |`,
      );
    }
    const rssAfter = tq ? rssMiB(tq.pid) : NaN;

    say();
    say("| workload | peer | median | × direct | p99 ms | errors |");
    say("| --- | --- | ---: | ---: | ---: | ---: |");
    const verdicts: string[] = [];
    for (const w of workloads) {
      const value = (peer: string) =>
        median(
          (results.get(`${w.name}/${peer}`) ?? []).map((r) =>
            w.bytes ? r.mibPerSec : r.rps
          ),
        );
      const base = value("direct");
      for (const peer of peers) {
        const rs = results.get(`${w.name}/${peer.name}`) ?? [];
        const v = value(peer.name);
        const errors = rs.reduce((n, r) => n + r.non2xx + r.socketErrors, 0);
        const unit = w.bytes ? "MiB/s" : "req/s";
        say(
          `| ${w.name} | ${peer.name} | ${fmt(v)} ${unit} | ${
            (v / base).toFixed(2)
          } | ${fmt(median(rs.map((r) => r.p99Ms)), 2)} | ${errors} |`,
        );
        const bar = BARS[w.name];
        if (peer.name === "tqserver" && bar !== undefined) {
          const ratio = v / base;
          const floor = value("deno-relay");
          verdicts.push(
            `${w.name}: tqserver ${ratio.toFixed(3)}x direct (bar ${bar}x: ${
              ratio >= bar && errors === 0 ? "met" : "NOT met"
            })` + (Number.isNaN(floor)
              ? ""
              : `; deno-relay ${(floor / base).toFixed(3)}x direct, tqserver ${
                (v / floor).toFixed(2)
              }x deno-relay`),
          );
        }
      }
    }
    say();
    for (const v of verdicts) say(v);
    say();
    for (const row of rssRows) say(row);
    if (tq) {
      say(
        `tqserver RSS: ${fmt(rssIdle, 1)} MiB idle, ${
          fmt(rssAfter, 1)
        } MiB after the run (bar ${RSS_BAR_MIB} MiB: ${
          rssAfter <= RSS_BAR_MIB ? "met" : "NOT met"
        })`,
      );
    }
    return 0;
  } finally {
    for (const peer of peers.reverse()) await peer.stop();
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  Deno.exit(await main());
}
