/**
 * Proxy benchmark: requests/s of a hello-world worker measured directly and
 * through tqserver, interleaved (direct, proxied, direct, proxied…) so both
 * see the same machine load. Non-2xx answers and socket errors are counted and
 * flagged; they never count as throughput.
 *
 * "Through the proxy" is the real server (`deno run -A main.ts --mode prod
 * --root DIR --port N`, one worker `index` on `/`, admin off). When it cannot
 * start, the fallback `bench/_proxy_harness.ts` (`createProxy` behind
 * `Deno.serve`) is measured instead; the output says which.
 *
 * Needs `wrk` (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`).
 *
 * ```sh
 * deno task bench
 * deno run -A bench/proxy_bench.ts --rounds 3 --duration 5 --connections 50 --threads 2
 * deno run -A bench/proxy_bench.ts --target harness
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Requests/s below this share of direct throughput fail the bar. */
const BAR = 0.12;
const READY_TIMEOUT_MS = 60_000;

interface WrkResult {
  requests: number;
  seconds: number;
  non2xx: number;
  socketErrors: number;
  /** Good (2xx/3xx) responses per second. */
  rps: number;
}

interface Target {
  kind: "server" | "harness";
  url: string;
  stop(): Promise<void>;
}

const encoder = new TextEncoder();
const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(benchDir, "..");
const deno = Deno.execPath();

function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function hasWrk(): Promise<boolean> {
  try {
    await new Deno.Command("wrk", {
      args: ["-v"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Polls `url` until it answers 200, for at most `ms`. */
async function waitServing(url: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.ok) return true;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Sends SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
async function stopProcess(
  child: Deno.ChildProcess,
  graceMs = 10_000,
): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  const timeout = new Promise<"timeout">((r) => {
    const t = setTimeout(() => r("timeout"), graceMs);
    child.status.finally(() => clearTimeout(t));
  });
  if (
    await Promise.race([child.status.then(() => "exited"), timeout]) ===
      "timeout"
  ) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
  }
}

/** Reads a child's stderr, resolving `ready` at the first line matching `marker`; keeps draining. */
function watchLines(
  stream: ReadableStream<Uint8Array>,
  marker: string,
  lines: string[],
): Promise<boolean> {
  return new Promise((resolve) => {
    (async () => {
      let pending = "";
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        pending += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (lines.length < 200) lines.push(line);
          if (line.includes(marker)) resolve(true);
        }
      }
      resolve(false);
    })();
  });
}

async function startDirect(): Promise<
  { url: string; child: Deno.ChildProcess }
> {
  const port = freePort();
  const child = new Deno.Command(deno, {
    args: ["run", "-A", join(benchDir, "_hello.ts")],
    env: { PORT: String(port) },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  if (!await waitServing(url, READY_TIMEOUT_MS)) {
    await stopProcess(child);
    throw new Error(`Hello worker did not serve on port ${port}`);
  }
  return { url, child };
}

/** Lays out a project root with one worker `index` (route `/`) and the admin port off. */
async function makeRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "tq_bench_" });
  const worker = join(root, "workers", "index");
  await Deno.mkdir(join(worker, "bin"), { recursive: true });
  await Deno.mkdir(join(root, "config"), { recursive: true });
  await Deno.copyFile(join(benchDir, "_hello.ts"), join(worker, "hello.ts"));
  const bin = join(worker, "bin", "index");
  await Deno.writeTextFile(
    bin,
    `#!/bin/sh\nexec "${deno}" run -A hello.ts\n`,
  );
  await Deno.chmod(bin, 0o755);
  await Deno.writeTextFile(
    join(root, "config", "server.yaml"),
    "server:\n  admin:\n    enabled: false\n",
  );
  return root;
}

async function startServer(): Promise<Target> {
  const root = await makeRoot();
  const port = freePort();
  const child = new Deno.Command(deno, {
    args: [
      "run",
      "-A",
      join(repoRoot, "main.ts"),
      "--mode",
      "prod",
      "--root",
      root,
      "--port",
      String(port),
    ],
    cwd: root,
    stdin: "null",
    // The server logs to stdout.
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines: string[] = [];
  const ready = await Promise.race([
    watchLines(child.stdout, "tqserver ready", lines),
    new Promise<false>((r) => setTimeout(() => r(false), READY_TIMEOUT_MS)),
  ]);
  const url = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    await stopProcess(child);
    await Deno.remove(root, { recursive: true });
  };
  if (!ready || !await waitServing(url, 5_000)) {
    await stop();
    throw new Error(
      `tqserver did not become ready:\n  ${lines.slice(-15).join("\n  ")}`,
    );
  }
  return { kind: "server", url, stop };
}

async function startHarness(upstream: string): Promise<Target> {
  const port = freePort();
  const child = new Deno.Command(deno, {
    args: [
      "run",
      "-A",
      join(benchDir, "_proxy_harness.ts"),
      "--port",
      String(port),
      "--upstream",
      upstream.replace(/\/$/, ""),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const ready = await Promise.race([
    watchLines(child.stderr, "proxy harness ready", lines),
    new Promise<false>((r) => setTimeout(() => r(false), READY_TIMEOUT_MS)),
  ]);
  if (!ready) {
    await stopProcess(child);
    throw new Error(`Proxy harness did not start:\n  ${lines.join("\n  ")}`);
  }
  return {
    kind: "harness",
    url: `http://127.0.0.1:${port}/`,
    stop: () => stopProcess(child),
  };
}

/** Parses wrk's text report. */
export function parseWrk(text: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(text);
  if (!total) throw new Error(`Cannot read wrk output:\n${text}`);
  const unit = { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[total[3] as "s"];
  const requests = Number(total[1]);
  const seconds = Number(total[2]) * unit;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const sock =
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
      .exec(text);
  const socketErrors = sock
    ? sock.slice(1).reduce((sum, n) => sum + Number(n), 0)
    : 0;
  const good = Math.max(0, requests - non2xx);
  return { requests, seconds, non2xx, socketErrors, rps: good / seconds };
}

async function runWrk(
  url: string,
  opts: { threads: number; connections: number; duration: number },
): Promise<WrkResult> {
  const out = await new Deno.Command("wrk", {
    args: [
      `-t${opts.threads}`,
      `-c${opts.connections}`,
      `-d${opts.duration}s`,
      "--timeout",
      "5s",
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`wrk failed:\n${text}`);
  return parseWrk(text);
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
      connections: { type: "string", default: "50" },
      threads: { type: "string", default: "2" },
      target: { type: "string", default: "auto" },
    },
  });
  const rounds = Number(values.rounds);
  const wrkOpts = {
    threads: Number(values.threads),
    connections: Number(values.connections),
    duration: Number(values.duration),
  };
  if (!await hasWrk()) {
    say("wrk is not installed. Install it and run again:");
    say("  Debian/Ubuntu: sudo apt-get install -y wrk");
    say("  macOS:         brew install wrk");
    say("  from source:   https://github.com/wg/wrk (make; put wrk on PATH)");
    return 1;
  }

  const direct = await startDirect();
  let target: Target | undefined;
  try {
    if (values.target !== "harness") {
      try {
        target = await startServer();
      } catch (err) {
        if (values.target === "server") throw err;
        say(`tqserver could not start; measuring the fallback harness.`);
        say(`  ${(err as Error).message.split("\n").join("\n  ")}`);
      }
    }
    target ??= await startHarness(direct.url);
    const label = target.kind === "server"
      ? "tqserver (main.ts --mode prod)"
      : "fallback harness (createProxy over Deno.serve)";
    say(`proxied target: ${label}`);
    say(
      `wrk -t${wrkOpts.threads} -c${wrkOpts.connections} -d${wrkOpts.duration}s, ` +
        `${rounds} rounds interleaved, ${navigator.hardwareConcurrency} CPUs\n`,
    );
    // Warm both paths (JIT, keep-alive pools) before measuring.
    await runWrk(direct.url, { ...wrkOpts, duration: 1 });
    await runWrk(target.url, { ...wrkOpts, duration: 1 });

    const rows: { round: number; kind: string; r: WrkResult }[] = [];
    say("round  target    good req/s   non-2xx  socket errors");
    for (let round = 1; round <= rounds; round++) {
      for (
        const [kind, url] of [["direct", direct.url], ["proxied", target.url]]
      ) {
        const r = await runWrk(url!, wrkOpts);
        rows.push({ round, kind: kind!, r });
        const flag = r.non2xx || r.socketErrors ? "  <-- errors" : "";
        say(
          `${String(round).padStart(5)}  ${kind!.padEnd(8)} ${
            fmt(r.rps).padStart(12)
          } ${String(r.non2xx).padStart(9)} ${
            String(r.socketErrors).padStart(14)
          }${flag}`,
        );
      }
    }
    const pick = (kind: string) =>
      rows.filter((row) => row.kind === kind).map((row) => row.r);
    const d = pick("direct");
    const p = pick("proxied");
    const directRps = median(d.map((r) => r.rps));
    const proxiedRps = median(p.map((r) => r.rps));
    const ratio = proxiedRps / directRps;
    const errors = [...d, ...p].reduce(
      (sum, r) => sum + r.non2xx + r.socketErrors,
      0,
    );
    say("");
    say(`median direct:  ${fmt(directRps)} req/s`);
    say(`median proxied: ${fmt(proxiedRps)} req/s  (${label})`);
    say(
      `ratio:          ${ratio.toFixed(3)}x  (bar ${BAR}x: ${
        ratio >= BAR ? "met" : "NOT met"
      })`,
    );
    say(
      errors
        ? `FLAG: ${errors} error answers/socket errors seen`
        : "errors: none",
    );
    return 0;
  } finally {
    await target?.stop();
    await stopProcess(direct.child);
  }
}

if (import.meta.main) {
  Deno.exit(await main());
}
