// Shared helpers of the end-to-end tests: temporary projects, a real tqserver
// process, free ports and bounded waits.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ECHO_WORKER = join(REPO, "tests", "testdata", "echo_worker.ts");
const DENO = Deno.execPath();

/** The bytes of `parts`, one after another. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A port nothing listens on right now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * A block of `count` consecutive ports that are free now, below Linux's
 * ephemeral range (32768+): there an outgoing connection of a parallel test
 * could take a pool port between the pool's probe and the worker's bind.
 */
export function freePortRange(count: number): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const start = 20000 + Math.floor(Math.random() * (12768 - count));
    let ok = true;
    for (let p = start; p < start + count; p++) {
      try {
        Deno.listen({ hostname: "127.0.0.1", port: p }).close();
      } catch {
        ok = false;
        break;
      }
    }
    if (ok) return start;
  }
  throw new Error("No free port range found");
}

/** Polls `fn` every 20 ms until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 5000,
  what = "condition",
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${what}${
      last ? `: ${last}` : ""
    }`,
  );
}

/**
 * True while a process with this pid runs. A zombie (exited, not yet reaped:
 * an orphan waits for init, which here may reap late) does not count.
 */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
  }
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** Writes an executable shell script worker that runs the echo worker with extra env. */
export function writeEchoBinary(
  root: string,
  name: string,
  env: Record<string, string> = {},
): string {
  const dir = join(root, "workers", name, "bin");
  Deno.mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v}'\n`)
    .join("");
  const tmp = `${path}.new`;
  Deno.writeTextFileSync(
    tmp,
    `#!/bin/sh\n${exports}exec '${DENO}' run -A --no-config '${ECHO_WORKER}'\n`,
    {
      mode: 0o755,
    },
  );
  Deno.chmodSync(tmp, 0o755);
  Deno.renameSync(tmp, path);
  return path;
}

/** Options for {@linkcode makeProject}. */
export interface ProjectOptions {
  /** Worker name → extra env of its echo binary. */
  workers?: Record<string, Record<string, string>>;
  /** server.yaml text appended after the generated admin/pool settings. */
  serverYaml?: string;
  deploymentYaml?: string;
}

/** A temporary project root with echo workers and a config that uses free ports. */
export interface Project {
  root: string;
  adminPort: number;
  poolStart: number;
  cleanup(): void;
}

export function makeProject(options: ProjectOptions = {}): Project {
  const { workers = { index: {} }, serverYaml = "", deploymentYaml } = options;
  const root = Deno.makeTempDirSync({ prefix: "tq-e2e-" });
  for (const [name, env] of Object.entries(workers)) {
    writeEchoBinary(root, name, env);
    Deno.mkdirSync(join(root, "workers", name, "public"), { recursive: true });
    Deno.mkdirSync(join(root, "workers", name, "private"), { recursive: true });
  }
  const adminPort = freePort();
  const poolStart = freePortRange(40);
  Deno.mkdirSync(join(root, "config"));
  Deno.writeTextFileSync(
    join(root, "config", "server.yaml"),
    `server:\n  host: 127.0.0.1\n  admin:\n    port: ${adminPort}\nworkers:\n  port_range_start: ${poolStart}\n` +
      `  port_range_end: ${
        poolStart + 39
      }\n  startup_delay_ms: 20\n  restart_delay_ms: 20\n` +
      `  shutdown_grace_period_ms: 2000\n` + serverYaml,
  );
  if (deploymentYaml) {
    Deno.writeTextFileSync(
      join(root, "config", "deployment.yaml"),
      deploymentYaml,
    );
  }
  return {
    root,
    adminPort,
    poolStart,
    cleanup: () => Deno.removeSync(root, { recursive: true }),
  };
}

/** A tqserver process started by a test. */
export interface RunningServer {
  process: Deno.ChildProcess;
  port: number;
  base: string;
  admin: string;
  /** Everything the server wrote to stderr so far. */
  logs(): string;
  /** Resolves when `text` appears in the log. */
  waitForLog(text: string | RegExp, timeoutMs?: number): Promise<void>;
  status(): Promise<StatusJson>;
  /** SIGTERM, then waits for exit (SIGKILL after 10 s). */
  stop(): Promise<Deno.CommandStatus>;
}

/** Answers by status class (`responses` of /api/status). */
export interface ResponsesJson {
  "2xx": number;
  "3xx": number;
  "4xx": number;
  "5xx": number;
}

export interface StatusJson {
  mode: string;
  pid: number;
  port: number;
  rss_bytes: number | null;
  cpu_seconds: number | null;
  responses: ResponsesJson;
  workers: {
    name: string;
    route: string;
    status: string;
    pid: number | null;
    port: number | null;
    restarts: number;
    last_restart_reason: string | null;
    last_error: string | null;
    requests: number;
    in_flight: number;
    rss_bytes: number | null;
    cpu_seconds: number | null;
    responses: ResponsesJson;
  }[];
}

/** True when `promise` settled within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise.then(() => true, () => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts `deno run main.ts` on a project and waits for "tqserver ready". */
export async function startServer(
  project: Project,
  args: string[] = ["--mode", "prod"],
  options: {
    waitReady?: boolean;
    env?: Record<string, string>;
    main?: string;
    /** `deno run` flags before the script, e.g. `--v8-flags=…`. */
    denoFlags?: string[];
  } = {},
): Promise<RunningServer> {
  const {
    waitReady = true,
    env = {},
    main = join(REPO, "main.ts"),
    denoFlags = [],
  } = options;
  const port = freePort();
  const process = new Deno.Command(DENO, {
    args: [
      "run",
      "-A",
      ...denoFlags,
      main,
      "--root",
      project.root,
      "--port",
      String(port),
      ...args,
    ],
    cwd: project.root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", TQ_STRICT_LIFECYCLE: "1", ...env },
  }).spawn();
  let text = "";
  const waiters = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      for (const w of waiters) w();
    }
  };
  const pumped = Promise.all([pump(process.stdout), pump(process.stderr)]);
  const admin = `http://127.0.0.1:${project.adminPort}`;
  const server: RunningServer = {
    process,
    port,
    base: `http://127.0.0.1:${port}`,
    admin,
    logs: () => text,
    waitForLog: (needle, timeoutMs = 15000) => {
      const found = () =>
        typeof needle === "string" ? text.includes(needle) : needle.test(text);
      if (found()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `Timed out waiting for log ${needle}\n--- log ---\n${text}`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          if (!found()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        process.status.then(() => setTimeout(check, 50));
      });
    },
    status: async () => {
      const res = await fetch(`${admin}/api/status`);
      return await res.json();
    },
    stop: async () => {
      try {
        process.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      const timer = setTimeout(() => {
        try {
          process.kill("SIGKILL");
        } catch {
          // Exited meanwhile.
        }
      }, 10000);
      const status = await process.status;
      clearTimeout(timer);
      // Bounded: a successor of a self-upgrade (a src/ edit during the run)
      // inherits stdout and would keep this wait open for ever.
      if (!(await within(pumped, 5000))) {
        let successor = 0;
        try {
          successor = Number(
            Deno.readTextFileSync(join(project.root, "logs", "tqserver.pid")),
          );
        } catch {
          // No PID file: nothing known to stop.
        }
        if (successor > 0 && successor !== process.pid) {
          Deno.kill(successor, "SIGTERM");
          await within(pumped, 15000);
        }
        throw new Error(
          `Server output stayed open after pid ${process.pid} exited (successor ${
            successor || "unknown"
          } sent SIGTERM)`,
        );
      }
      return status;
    },
  };
  if (waitReady) await server.waitForLog("tqserver ready");
  return server;
}

/** Sends a raw HTTP/1.1 request and returns the whole raw response (connection closed by us). */
export async function rawRequest(
  port: number,
  head: string,
  body?: Uint8Array,
): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(head));
    if (body) await conn.write(body);
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    const deadline = setTimeout(() => conn.close(), 5000);
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        chunks.push(buf.slice(0, n));
      }
    } catch {
      // Closed by the deadline.
    }
    clearTimeout(deadline);
    return concat(chunks);
  } finally {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }
}

/** A private copy of the server's source, so touching it affects no other test. */
export function copyServer(
  dir: string = Deno.makeTempDirSync({ prefix: "tq-src-" }),
): string {
  for (const file of ["main.ts", "deno.json", "deno.lock"]) {
    Deno.copyFileSync(join(REPO, file), join(dir, file));
  }
  const copy = (from: string, to: string) => {
    Deno.mkdirSync(to, { recursive: true });
    for (const entry of Deno.readDirSync(from)) {
      if (entry.isDirectory) copy(join(from, entry.name), join(to, entry.name));
      else if (entry.isFile) {
        Deno.copyFileSync(join(from, entry.name), join(to, entry.name));
      }
    }
  };
  copy(join(REPO, "src"), join(dir, "src"));
  return dir;
}
