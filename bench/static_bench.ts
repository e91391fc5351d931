/**
 * Static file benchmark: requests/s of a small CSS file and of a 1 MiB file
 * through tqserver (`main.ts --mode prod`) and through nginx serving the same
 * folder (`sendfile on`, `open_file_cache` off, `worker_processes auto`: the
 * Debian defaults, which the bars compare with), interleaved so all see the
 * same machine load. nginx with `worker_processes 1` (one event loop, like
 * tqserver) is measured too, for context, and so is `deno-floor`
 * (`bench/_static_floor.ts`: Deno.serve sending the same bytes from memory,
 * the least Deno costs). Prints the ratios against the bars (small ≥ 0.6×,
 * 1 MiB ≥ 0.8×) and tqserver's RSS after the run. Non-2xx answers and socket
 * errors are counted and flagged; they never count as throughput.
 *
 * Needs `wrk` and `nginx` on PATH (Debian/Ubuntu: `apt-get install -y wrk nginx`).
 *
 * ```sh
 * deno task bench            # the proxy figures, then these
 * deno run -A bench/static_bench.ts --rounds 3 --duration 5
 * # another server.yaml for tqserver, e.g. 1 MiB files cached too:
 * TQ_BENCH_YAML=$'server:\n  admin:\n    enabled: false\n  static:\n    cache_file_max_bytes: 2097152\n' deno run -A bench/static_bench.ts
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  freePort,
  hasCommand,
  rssMiB,
  stopProcess,
  tqserverArgs,
} from "./_peers.ts";
import { hasWrk, runWrk, type WrkOptions } from "./_wrk.ts";

const BARS = { small: 0.6, large: 0.8 } as const;
const READY_TIMEOUT_MS = 60_000;
const SMALL_BYTES = 4 * 1024;
const LARGE_BYTES = 1024 * 1024;

const encoder = new TextEncoder();
const benchDir = dirname(fileURLToPath(import.meta.url));
const deno = Deno.execPath();

function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

/** Polls `url` until it answers 200 with `length` bytes, for at most `ms`. */
async function waitServing(
  url: string,
  length: number,
  ms: number,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      const body = await res.bytes();
      if (res.ok && body.length === length) return true;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** A project root: one worker `index` (the hello worker) and its public/ files. */
async function makeRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "tq_static_bench_" });
  // nginx's workers may run as another user (nobody): let them read the folder.
  await Deno.chmod(root, 0o755);
  const worker = join(root, "workers", "index");
  await Deno.mkdir(join(worker, "bin"), { recursive: true });
  await Deno.mkdir(join(worker, "public", "css"), { recursive: true });
  await Deno.mkdir(join(root, "config"), { recursive: true });
  await Deno.copyFile(join(benchDir, "_hello.ts"), join(worker, "hello.ts"));
  const bin = join(worker, "bin", "index");
  await Deno.writeTextFile(bin, `#!/bin/sh\nexec "${deno}" run -A hello.ts\n`);
  await Deno.chmod(bin, 0o755);
  const rule = ".card{margin:0 auto;padding:1rem;color:#333}\n";
  await Deno.writeTextFile(
    join(worker, "public", "css", "style.css"),
    rule.repeat(Math.ceil(SMALL_BYTES / rule.length)).slice(0, SMALL_BYTES),
  );
  const large = new Uint8Array(LARGE_BYTES);
  crypto.getRandomValues(large.subarray(0, 65536));
  for (let i = 65536; i < LARGE_BYTES; i++) large[i] = large[i % 65536]!;
  await Deno.writeFile(join(worker, "public", "large.bin"), large);
  await Deno.writeTextFile(
    join(root, "config", "server.yaml"),
    Deno.env.get("TQ_BENCH_YAML") ?? "server:\n  admin:\n    enabled: false\n",
  );
  return root;
}

function startTqserver(
  root: string,
): Promise<{ base: string; child: Deno.ChildProcess }> {
  const port = freePort();
  const child = new Deno.Command(deno, {
    args: tqserverArgs(root, port),
    cwd: root,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  return serving("tqserver", port, child);
}

/** Waits until `child` serves the 1 MiB file on `port`, or stops it and fails naming it. */
async function serving(
  name: string,
  port: number,
  child: Deno.ChildProcess,
): Promise<{ base: string; child: Deno.ChildProcess }> {
  const base = `http://127.0.0.1:${port}/static/index`;
  if (!await waitServing(`${base}/large.bin`, LARGE_BYTES, READY_TIMEOUT_MS)) {
    await stopProcess(child);
    throw new Error(`${name} did not serve static files on port ${port}`);
  }
  return { base, child };
}

async function startNginx(
  root: string,
  workers: "auto" | "1",
): Promise<{ base: string; child: Deno.ChildProcess }> {
  const port = freePort();
  const dir = join(root, `nginx_${workers}`);
  await Deno.mkdir(dir);
  const pub = join(root, "workers", "index", "public");
  const conf = join(dir, "nginx.conf");
  // As Debian ships it where it matters: sendfile on, no open_file_cache.
  await Deno.writeTextFile(
    conf,
    `worker_processes ${workers};
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  types { text/css css; application/octet-stream bin; }
  client_body_temp_path ${dir}/client;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location /static/index/ { alias ${pub}/; }
  }
}
`,
  );
  const child = new Deno.Command("nginx", {
    args: ["-c", conf, "-p", dir],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const base = `http://127.0.0.1:${port}/static/index`;
  if (!await waitServing(`${base}/large.bin`, LARGE_BYTES, 10_000)) {
    await stopProcess(child);
    throw new Error(`nginx did not serve on port ${port}`);
  }
  return { base, child };
}

/** The floor (`bench/_static_floor.ts`): Deno.serve sending the same bytes from memory. */
function startFloor(
  root: string,
): Promise<{ base: string; child: Deno.ChildProcess }> {
  const port = freePort();
  const child = new Deno.Command(deno, {
    args: ["run", "-A", join(benchDir, "_static_floor.ts")],
    env: {
      PORT: String(port),
      PUBLIC: join(root, "workers", "index", "public"),
    },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  return serving("deno-floor", port, child);
}

/** wrk -t1 at `connections` for `duration` s, as every figure of this bench. */
function wrkOptions(connections: number, duration: number): WrkOptions {
  return { threads: 1, connections, duration };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      duration: { type: "string", default: "5" },
    },
  });
  const rounds = Number(values.rounds);
  const duration = Number(values.duration);
  if (!await hasWrk() || !await hasCommand("nginx")) {
    say("static bench needs wrk and nginx on PATH:");
    say("  Debian/Ubuntu: sudo apt-get install -y wrk nginx");
    say("  macOS:         brew install wrk nginx");
    return 1;
  }
  const root = await makeRoot();
  type Target = { name: string; base: string; child: Deno.ChildProcess };
  const targets: Target[] = [];
  try {
    targets.push({ name: "nginx", ...await startNginx(root, "auto") });
    targets.push({ name: "nginx-1w", ...await startNginx(root, "1") });
    const tq: Target = { name: "tqserver", ...await startTqserver(root) };
    targets.push(tq);
    targets.push({ name: "deno-floor", ...await startFloor(root) });
    const cases = [
      {
        kind: "small" as const,
        label: `small (${SMALL_BYTES / 1024} KiB css)`,
        path: "/css/style.css",
        connections: 50,
      },
      {
        kind: "large" as const,
        label: "1 MiB file",
        path: "/large.bin",
        connections: 10,
      },
    ];
    say("");
    say(
      "static files: tqserver (main.ts --mode prod) vs nginx (sendfile on, open_file_cache off,",
    );
    say(
      "worker_processes auto, the bar) and nginx-1w (worker_processes 1: one event loop, like tqserver)",
    );
    say(
      `wrk -t1, -c50 small / -c10 1 MiB, -d${duration}s, ${rounds} rounds interleaved, ${navigator.hardwareConcurrency} CPUs\n`,
    );
    say(
      "file                  round  target      good req/s  non-2xx  sock err",
    );
    const ratios: string[] = [];
    let errors = 0;
    let allMet = true;
    for (const c of cases) {
      // Warm every target (JIT, the cache, page cache) before measuring.
      for (const t of targets) {
        await runWrk(t.base + c.path, wrkOptions(c.connections, 1));
      }
      const seen = new Map<string, number[]>(targets.map((t) => [t.name, []]));
      for (let round = 1; round <= rounds; round++) {
        for (const t of targets) {
          const r = await runWrk(
            t.base + c.path,
            wrkOptions(c.connections, duration),
          );
          seen.get(t.name)!.push(r.rps);
          errors += r.non2xx + r.socketErrors;
          say(
            `${c.label.padEnd(21)} ${String(round).padStart(5)}  ${
              t.name.padEnd(10)
            } ${fmt(r.rps).padStart(12)} ${String(r.non2xx).padStart(8)} ${
              String(r.socketErrors).padStart(9)
            }${r.non2xx || r.socketErrors ? "  <-- errors" : ""}`,
          );
        }
      }
      const n = median(seen.get("nginx")!);
      const n1 = median(seen.get("nginx-1w")!);
      const t = median(seen.get("tqserver")!);
      const floor = median(seen.get("deno-floor")!);
      const ratio = t / n;
      const bar = BARS[c.kind];
      allMet &&= ratio >= bar;
      ratios.push(
        `${c.label.padEnd(21)} nginx ${fmt(n).padStart(8)}  nginx-1w ${
          fmt(n1).padStart(8)
        }  tqserver ${fmt(t).padStart(8)}  ratio ${
          ratio.toFixed(2)
        }x (bar ${bar}x: ${ratio >= bar ? "met" : "NOT met"}), vs nginx-1w ${
          (t / n1).toFixed(2)
        }x; deno-floor ${fmt(floor)} = ${
          (floor / n).toFixed(2)
        }x nginx, tqserver ${(t / floor).toFixed(2)}x deno-floor`,
      );
    }
    say("");
    say("medians:");
    for (const line of ratios) say("  " + line);
    say(`tqserver RSS after the run: ${rssMiB(tq.child.pid).toFixed(1)} MiB`);
    say(
      errors
        ? `FLAG: ${errors} error answers/socket errors seen`
        : "errors: none",
    );
    say(allMet ? "bars: all met" : "bars: NOT all met");
    return 0;
  } finally {
    for (const t of targets) await stopProcess(t.child);
    await Deno.remove(root, { recursive: true });
  }
}

if (import.meta.main) {
  Deno.exit(await main());
}
