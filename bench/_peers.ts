/**
 * The processes the proxy benchmark compares, all on loopback in front of the
 * same worker code (`bench/_hello.ts`): the worker itself (direct), tqserver
 * (`main.ts --mode prod`), nginx with an upstream `keepalive` pool and Caddy's
 * `reverse_proxy`. A peer whose binary is missing is skipped by the caller.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One running peer. */
export interface Peer {
  name: string;
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`. */
  base: string;
  /** Pid whose RSS is reported (the proxy itself, not its workers). */
  pid: number;
  stop(): Promise<void>;
}

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(benchDir, "..");
const deno = Deno.execPath();
const READY_TIMEOUT_MS = 60_000;

/** A port nothing listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** True when `command` can be run (`nginx`, `caddy`). */
export async function hasCommand(
  command: string,
  arg = "-v",
): Promise<boolean> {
  try {
    await new Deno.Command(command, {
      args: [arg],
      stdout: "null",
      stderr: "null",
    }).output();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Resident set size of `pid` in MiB, from /proc (NaN elsewhere). */
export function rssMiB(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = /VmRSS:\s+(\d+) kB/.exec(status);
    return kb ? Number(kb[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

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

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(
  child: Deno.ChildProcess,
  graceMs = 10_000,
): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = await Promise.race([
    child.status.then(() => false),
    new Promise<boolean>((r) => timer = setTimeout(() => r(true), graceMs)),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
  }
}

/** Spawns `command`, waits until `base/` answers 200, or fails naming the peer and its last output. */
export async function spawnPeer(
  name: string,
  base: string,
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; cleanup?: string },
): Promise<Peer> {
  const child = new Deno.Command(command, {
    args,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: options.env ?? {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      output = (output + chunk).slice(-4000);
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const stop = async () => {
    await stopProcess(child);
    await drained;
    if (options.cleanup) {
      await Deno.remove(options.cleanup, { recursive: true });
    }
  };
  if (!await waitServing(base + "/", READY_TIMEOUT_MS)) {
    await stop();
    throw new Error(`${name} did not serve on ${base}:\n${output}`);
  }
  return { name, base, pid: child.pid, stop };
}

/** The worker alone, on its own port. */
export function startDirect(): Promise<Peer> {
  const port = freePort();
  return spawnPeer(
    "direct",
    `http://127.0.0.1:${port}`,
    deno,
    ["run", "-A", join(benchDir, "_hello.ts")],
    { env: { PORT: String(port) } },
  );
}

/** tqserver in prod mode with one worker `index` (route `/`) running the same worker code. */
export async function startTqserver(): Promise<Peer> {
  const root = await Deno.makeTempDir({ prefix: "tq_bench_" });
  const worker = join(root, "workers", "index");
  await Deno.mkdir(join(worker, "bin"), { recursive: true });
  await Deno.mkdir(join(root, "config"), { recursive: true });
  await Deno.copyFile(join(benchDir, "_hello.ts"), join(worker, "hello.ts"));
  const bin = join(worker, "bin", "index");
  await Deno.writeTextFile(bin, `#!/bin/sh\nexec "${deno}" run -A hello.ts\n`);
  await Deno.chmod(bin, 0o755);
  await Deno.writeTextFile(
    join(root, "config", "server.yaml"),
    Deno.env.get("TQ_BENCH_YAML") ?? "server:\n  admin:\n    enabled: false\n",
  );
  const port = freePort();
  return spawnPeer(
    "tqserver",
    `http://127.0.0.1:${port}`,
    deno,
    tqserverArgs(root, port),
    { cwd: root, cleanup: root },
  );
}

/**
 * The `deno` arguments of tqserver in prod mode on `root` and `port`: the
 * flags it ships with (compile.sh, `deno task start`) plus any of
 * `TQ_BENCH_DENO_FLAGS` (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
export function tqserverArgs(root: string, port: number): string[] {
  return [
    "run",
    "-A",
    "--v8-flags=--max-semi-space-size=4",
    ...Deno.env.get("TQ_BENCH_DENO_FLAGS")?.split(" ") ?? [],
    join(repoRoot, "main.ts"),
    "--mode",
    "prod",
    "--root",
    root,
    "--port",
    String(port),
    "--quiet",
  ];
}

/**
 * Debian's nginx, one worker process, upstream keepalive (its documented
 * proxy setup); `directives` go into its `server` block (e.g.
 * `client_max_body_size 0;`).
 */
export async function startNginx(
  upstream: string,
  directives = "",
): Promise<Peer> {
  const dir = await Deno.makeTempDir({ prefix: "tq_bench_nginx_" });
  // Run as root, nginx's workers are `nobody`: they must reach the temp paths.
  await Deno.chmod(dir, 0o755);
  const port = freePort();
  await Deno.writeTextFile(
    join(dir, "nginx.conf"),
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream worker {
    server ${upstream.replace("http://", "")};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    ${directives}
    location / {
      proxy_pass http://worker;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`,
  );
  return spawnPeer(
    "nginx",
    `http://127.0.0.1:${port}`,
    "nginx",
    ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", "stderr"],
    { cleanup: dir },
  );
}

/** Debian's Caddy with a Caddyfile `reverse_proxy` (HTTP only, admin API off). */
export async function startCaddy(upstream: string): Promise<Peer> {
  const dir = await Deno.makeTempDir({ prefix: "tq_bench_caddy_" });
  const port = freePort();
  await Deno.writeTextFile(
    join(dir, "Caddyfile"),
    `{
  admin off
  auto_https off
  log {
    level ERROR
  }
}
http://127.0.0.1:${port} {
  reverse_proxy ${upstream.replace("http://", "")}
}
`,
  );
  return spawnPeer(
    "caddy",
    `http://127.0.0.1:${port}`,
    "caddy",
    ["run", "--config", join(dir, "Caddyfile"), "--adapter", "caddyfile"],
    {
      cwd: dir,
      env: { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
      cleanup: dir,
    },
  );
}

/** The floor (`bench/_relay.ts`): a bare Deno.serve relay with no HTTP rules, what a Deno proxy costs at least. */
export function startRelay(upstream: string): Promise<Peer> {
  const port = freePort();
  return spawnPeer(
    "deno-relay",
    `http://127.0.0.1:${port}`,
    deno,
    ["run", "-A", join(benchDir, "_relay.ts")],
    {
      env: {
        PORT: String(port),
        UPSTREAM: upstream.replace("http://", ""),
      },
    },
  );
}
