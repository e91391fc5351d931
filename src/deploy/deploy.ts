import { dirname, join, relative } from "node:path";
import type { DeployTarget, WorkerSpec } from "../config/mod.ts";
import { type Logger, silentLogger } from "../log/mod.ts";

/** Runs a command; injectable for tests. Resolves with its exit code and output. */
export type RunFn = (
  cmd: string[],
  options?: { cwd?: string },
) => Promise<{ code: number; output: string }>;

/** Options for {@linkcode deploy}. */
export interface DeployOptions {
  /** Project root (the source of the deploy). */
  root: string;
  /** Target name, for messages. */
  name: string;
  /** The target from `deployment.targets`. */
  target: DeployTarget;
  /** Workers to deploy. */
  workers: WorkerSpec[];
  /** True when the user named workers (then config/ and server/ are left alone). Default false. */
  onlyWorkers?: boolean;
  /** Print what would be done, change nothing. Default false. */
  dryRun?: boolean;
  /** Ask the target's server to reload afterwards. Default false. */
  reload?: boolean;
  /** Put `bin/{name}.prev` back instead of deploying. Default false. */
  rollback?: boolean;
  /** Logger. Default silent. */
  logger?: Logger;
  /** Command runner. Default: `Deno.Command`. */
  run?: RunFn;
  /** fetch for the admin API. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Bearer token for the target's admin API (`server.admin.token`). Default none. */
  adminToken?: string;
}

/** What happened on one host. */
export interface HostReport {
  host: string;
  workers: string[];
  skipped: string[];
  reloaded: boolean;
}

const decoder = new TextDecoder();

async function defaultRun(cmd: string[], options: { cwd?: string } = {}) {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    output: decoder.decode(out.stdout) + decoder.decode(out.stderr),
  };
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && ((info.mode ?? 0o755) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Deploys worker folders (without `src/`) and, unless workers are named,
 * `config/` and `server/` to every host of a target, one host at a time:
 * rsync with mtimes preserved, the replaced binary kept as `bin/{name}.prev`,
 * then an optional reload that must come back healthy before the next host.
 *
 * @throws {Error} When a command fails or a host does not come back healthy; later hosts are left alone.
 */
export async function deploy(options: DeployOptions): Promise<HostReport[]> {
  const {
    root,
    name,
    target,
    workers,
    onlyWorkers = false,
    dryRun = false,
    reload = false,
    rollback = false,
    logger = silentLogger,
    run = defaultRun,
    fetch: fetchFn = fetch,
    adminToken = "",
  } = options;
  const hosts = target.hosts.length > 0 ? target.hosts : [""];
  // Never wait for a password prompt or a host that does not answer.
  const sshArgs = [
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    ...target.ssh_options.split(/\s+/).filter(Boolean),
  ];
  const reports: HostReport[] = [];
  const exec = async (cmd: string[]) => {
    logger.info(dryRun && cmd[0] !== "rsync" ? "would run" : "run", {
      cmd: cmd.map(shellQuote).join(" "),
    });
    if (dryRun && cmd[0] !== "rsync") return "";
    const res = await run(cmd, { cwd: root });
    if (res.code !== 0) {
      throw new Error(
        `Command failed with code ${res.code}: ${
          cmd.map(shellQuote).join(" ")
        }\n${res.output.trim()}`,
      );
    }
    return res.output;
  };
  for (const host of hosts) {
    const dest = (path: string) =>
      host ? `${host}:${join(target.path, path)}` : join(target.path, path);
    const remote = async (script: string) => {
      if (host) return await exec(["ssh", ...sshArgs, host, script]);
      return await exec(["sh", "-c", script]);
    };
    const report: HostReport = {
      host: host || target.path,
      workers: [],
      skipped: [],
      reloaded: false,
    };
    for (const worker of workers) {
      // The same root-relative places as here: the workers folder and binaries.path.
      const rel = relative(root, worker.dir);
      const binRel = relative(root, worker.binPath);
      const binInWorker = relative(worker.dir, worker.binPath);
      if (rollback) {
        const bin = shellQuote(join(target.path, binRel));
        await remote(
          `set -e; if [ -e ${bin}.prev ]; then mv -f ${bin} ${bin}.rollback && mv -f ${bin}.prev ${bin} && ` +
            `mv -f ${bin}.rollback ${bin}.prev && touch ${bin}; else echo "no previous binary" >&2; exit 3; fi`,
        );
        report.workers.push(worker.name);
        continue;
      }
      if (!(await isExecutable(worker.binPath))) {
        logger.warn("worker skipped: no binary", {
          worker: worker.name,
          fix: "build it first (scripts/build-prod.sh)",
        });
        report.skipped.push(worker.name);
        continue;
      }
      if (!dryRun) {
        await remote(
          `mkdir -p ${shellQuote(join(target.path, rel))} ${
            shellQuote(join(target.path, dirname(binRel)))
          }`,
        );
      }
      const rsync = [
        "rsync",
        "-a",
        ...(host ? ["-e", `ssh ${sshArgs.join(" ")}`] : []),
        ...(dryRun ? ["--dry-run", "--itemize-changes"] : []),
      ];
      // Everything but src/ and bin/, mirrored; then the binary alone, the replaced one kept as .prev.
      await exec([
        ...rsync,
        "--delete",
        "--exclude=/src/",
        "--exclude=/bin/",
        ...(binInWorker.startsWith("..") ? [] : [`--exclude=/${binInWorker}`]),
        `${join(root, rel)}/`,
        `${dest(rel)}/`,
      ]);
      await exec([
        ...rsync,
        // A rebuilt binary of the same size in the same second passes rsync's quick check.
        "--checksum",
        "--backup",
        "--suffix=.prev",
        worker.binPath,
        `${dest(dirname(binRel))}/`,
      ]);
      report.workers.push(worker.name);
    }
    if (!onlyWorkers && !rollback) {
      for (const dir of ["config", "server"]) {
        try {
          await Deno.stat(join(root, dir));
        } catch {
          continue;
        }
        if (!dryRun) {
          await remote(`mkdir -p ${shellQuote(join(target.path, dir))}`);
        }
        await exec([
          "rsync",
          "-a",
          ...(host ? ["-e", `ssh ${sshArgs.join(" ")}`] : []),
          ...(dryRun ? ["--dry-run", "--itemize-changes"] : []),
          `${join(root, dir)}/`,
          `${dest(dir)}/`,
        ]);
      }
    }
    if ((reload || rollback) && !dryRun) {
      await reloadHost(host, target, {
        remote,
        fetch: fetchFn,
        logger,
        workers: report.workers,
        token: adminToken,
      });
      report.reloaded = true;
    }
    reports.push(report);
    logger.info("host done", {
      target: name,
      host: report.host,
      workers: report.workers.join(",") || "-",
    });
  }
  return reports;
}

interface ReloadOptions {
  remote: (script: string) => Promise<string>;
  fetch: typeof fetch;
  logger: Logger;
  workers: string[];
  token: string;
}

type AdminCall = (
  path: string,
  method: "GET" | "POST",
) => Promise<{ ok: boolean; status: number; body: unknown }>;

/**
 * Calls the target's admin API: directly for a local target, and on the host
 * itself (`ssh host curl`) for a remote one, since the admin listener is
 * bound to the host's loopback by default.
 */
function adminCall(
  host: string,
  adminUrl: string,
  token: string,
  remote: (script: string) => Promise<string>,
  fetchFn: typeof fetch,
): AdminCall {
  // The admin API takes POSTs only as JSON (no web page can forge one), and
  // every call with the Bearer token when server.admin.token is set.
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    ...(token ? { Authorization: `Bearer ${token}` } : {}),
  };
  if (!host) {
    return async (path, method) => {
      const res = await fetchFn(`${adminUrl}${path}`, {
        method,
        headers,
        signal: AbortSignal.timeout(60_000),
      });
      const text = await res.text();
      return { ok: res.ok, status: res.status, body: parseBody(text) };
    };
  }
  return async (path, method) => {
    // The status code on a line of its own after the body: a 401 or 500 is
    // an answer to report, not a success with an odd body.
    const out = await remote(
      `curl -sS --max-time 60 -w '\\n%{http_code}' -X ${method} ${
        Object.entries(headers).map(([k, v]) =>
          `-H ${shellQuote(`${k}: ${v}`)}`
        )
          .join(" ")
      } ${shellQuote(`${adminUrl}${path}`)}`,
    );
    const cut = out.trimEnd().lastIndexOf("\n");
    const status = Number(out.trimEnd().slice(cut + 1)) || 0;
    return {
      ok: status >= 200 && status < 300,
      status,
      body: parseBody(cut < 0 ? "" : out.slice(0, cut)),
    };
  };
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.trim().slice(0, 200) };
  }
}

async function reloadHost(
  host: string,
  target: DeployTarget,
  options: ReloadOptions,
): Promise<void> {
  const { remote, fetch: fetchFn, logger, workers, token } = options;
  const where = host || target.path;
  if (target.admin_url) {
    const call = adminCall(host, target.admin_url, token, remote, fetchFn);
    let res: Awaited<ReturnType<AdminCall>> | undefined;
    try {
      res = await call("/api/reload", "POST");
    } catch (err) {
      logger.warn("admin reload unreachable, falling back to SIGHUP", {
        host: where,
        url: target.admin_url,
        error: err,
      });
    }
    if (res) {
      const body = res.body as {
        error?: string;
        report?: {
          actions?: { worker: string; action: string; error?: string }[];
          config?: string;
          config_error?: string;
        };
      };
      const failed = (body.report?.actions ?? []).filter((a) =>
        a.action === "failed"
      ).map((a) => `${a.worker}: ${a.error ?? "failed"}`);
      // The deployed config did not load: the server keeps running the old one.
      if (body.report?.config === "rejected") {
        failed.unshift(
          `config rejected: ${body.report.config_error ?? "invalid"}`,
        );
      }
      if (!res.ok || failed.length) {
        throw new Error(
          `Reload on "${where}" failed: ${
            failed.join("; ") ||
            `status ${res.status}${body.error ? ` (${body.error})` : ""}`
          }`,
        );
      }
      await waitHealthy(call, where, workers);
      logger.info("reloaded", { host: where, via: "admin" });
      return;
    }
  }
  await remote("killall -HUP tqserver");
  logger.info("reloaded", { host: where, via: "SIGHUP" });
}

async function waitHealthy(
  call: AdminCall,
  where: string,
  workers: string[],
): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { ok, status: code, body } = await call("/api/status", "GET");
    if (!ok) {
      throw new Error(
        `Status of "${where}" answered ${code}: ${
          (body as { error?: string }).error ?? "no reason given"
        }`,
      );
    }
    const status = body as { workers: { name: string; status: string }[] };
    const bad = status.workers.filter((w) =>
      workers.includes(w.name) && w.status !== "healthy"
    );
    if (bad.length === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Workers not healthy on "${where}" after 60 s`);
}
