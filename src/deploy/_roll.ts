// Folder-private: the health gate after a reload, the canary watch, and
// putting hosts back on their previous release.
import type { DeployTarget } from "../config/mod.ts";
import { type Logger, silentLogger } from "../log/mod.ts";
import { Admin, reloadServer, type WorkerStatus } from "./_admin.ts";
import { type Host, type RunFn, targetHosts } from "./_host.ts";
import { type Change, changedWorkers, type ShippedWorker } from "./_release.ts";
import { rollbackScript } from "./_scripts.ts";
import type { HostReport } from "./types.ts";

/** The hosts of one deploy or rollback and what is known about them. */
export interface Fleet {
  hosts: Host[];
  reports: HostReport[];
  /** Indexes of the hosts whose serving tree took the deploy. */
  took: Set<number>;
  admin: (i: number) => Admin | undefined;
  pidFile: string;
  healthTimeoutMs: number;
  logger: Logger;
}

/** How a deploy or rollback reaches and checks its hosts. */
export interface FleetOptions {
  /** `server.pid_file` of the deployed config, for a reload without the admin API. Default `logs/tqserver.pid`. */
  pidFile?: string;
  /** Bearer token for the hosts' admin API (`server.admin.token`). Default none. */
  adminToken?: string;
  /** How long a host's workers may take to be healthy after a reload, in ms. Default 60000. */
  healthTimeoutMs?: number;
  /** Logger. Default silent. */
  logger?: Logger;
  /** Command runner (ssh, rsync). Default: `Deno.Command`. */
  run?: RunFn;
  /** fetch for admin APIs reachable from here. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/**
 * The hosts of `target`, each `untouched` so far, with its admin API when the
 * target has an `admin_url` (one `Admin` per host: it remembers whether the
 * API answers from here).
 */
export function openFleet(target: DeployTarget, options: FleetOptions): Fleet {
  const {
    pidFile = "logs/tqserver.pid",
    adminToken = "",
    healthTimeoutMs = 60_000,
    logger = silentLogger,
    run,
    fetch: fetchFn = fetch,
  } = options;
  const hosts = targetHosts(target, run ? { run } : {});
  const admins = hosts.map((h) =>
    target.admin_url
      ? new Admin(h, target.admin_url, { token: adminToken, fetch: fetchFn })
      : undefined
  );
  return {
    hosts,
    reports: hosts.map((h) => ({
      host: h.label,
      state: "untouched",
      changes: [],
      reloaded: false,
    })),
    took: new Set(),
    admin: (i) => admins[i],
    pidFile,
    healthTimeoutMs,
    logger,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sameSecond(iso: string | null, ms: number): boolean {
  return iso !== null &&
    Math.floor(Date.parse(iso) / 1000) === Math.floor(ms / 1000);
}

/** Options for {@linkcode waitHealthy}. */
export interface WaitHealthyOptions {
  /** What the apply on the host changed. */
  changes: Change[];
  /** The workers the deploy shipped. */
  shipped: ShippedWorker[];
  /** How long to wait, in ms. */
  timeoutMs: number;
}

/**
 * Waits until every worker the changes touched is healthy: on the shipped
 * binary's mtime when its binary changed, and without `last_error` when it
 * was restarted (binary or private change). A config change checks every
 * shipped worker's health.
 *
 * @throws {Error} Naming the worker and what it showed when the time runs out.
 */
export async function waitHealthy(
  admin: Admin,
  options: WaitHealthyOptions,
): Promise<void> {
  const { changes, shipped, timeoutMs } = options;
  const changed = changedWorkers(changes, shipped);
  // A config change may restart any worker: all must be healthy, but only
  // those whose own files changed are held to a clean last_error (another's
  // may predate this deploy).
  const checks =
    (changed.config
      ? shipped
      : shipped.filter((w) => changed.workers.some((c) => c.name === w.name)))
      .map((w) => {
        const c = changed.workers.find((x) => x.name === w.name);
        return {
          worker: w,
          binary: c?.binary ?? false,
          restarted: (c?.binary || c?.private) ?? false,
        };
      });
  if (checks.length === 0) return;
  const deadline = Date.now() + timeoutMs;
  let problem = "";
  while (true) {
    const workers = await admin.workers();
    problem = "";
    for (const { worker, binary, restarted } of checks) {
      const s: WorkerStatus | undefined = workers.find((w) =>
        w.name === worker.name
      );
      if (!s) problem = `worker ${worker.name} is not running`;
      else if (s.status !== "healthy") {
        problem = `worker ${worker.name} is ${s.status}${
          s.last_error ? ` (${s.last_error})` : ""
        }`;
      } else if (binary && !sameSecond(s.binary_mtime, worker.binMtimeMs)) {
        problem = `worker ${worker.name} still runs the binary of ${
          s.binary_mtime ?? "?"
        }${s.last_error ? ` (${s.last_error})` : ""}`;
      } else if (restarted && s.last_error) {
        problem = `worker ${worker.name}: ${s.last_error}`;
      }
      if (problem) break;
    }
    if (!problem) return;
    if (Date.now() >= deadline) break;
    await sleep(200);
  }
  throw new Error(`not healthy after ${timeoutMs / 1000} s: ${problem}`);
}

function totalRestarts(workers: WorkerStatus[]): number {
  return workers.reduce((n, w) => n + (w.restarts ?? 0), 0);
}

/** Options for {@linkcode watchCanary}. */
export interface WatchCanaryOptions {
  /** Public-port request and 5xx counts before the deploy. Default none: judged against a 0% rate. */
  before?: { total: number; errors: number } | undefined;
  /** How long to watch, in ms. */
  ms: number;
  /** Logs a canary without traffic and a passed one. */
  logger: Logger;
}

/**
 * Watches the canary for `ms`: fails when its workers restart (crashes),
 * turn unhealthy, or its 5xx rate on the public port rises clearly above
 * the rate before the deploy (by more than a percentage point, over at
 * least 10 requests).
 */
export async function watchCanary(
  admin: Admin,
  options: WatchCanaryOptions,
): Promise<void> {
  const { before, ms, logger } = options;
  const base = before ?? { total: 0, errors: 0 };
  const baseRate = base.total > 0 ? base.errors / base.total : 0;
  const start = await admin.requestCounts();
  const restarts = totalRestarts(await admin.workers());
  const end = Date.now() + ms;
  let seen = { total: 0, errors: 0 };
  const fmt = (n: number) => `${(n * 100).toFixed(1)}%`;
  while (true) {
    await sleep(Math.min(500, Math.max(0, end - Date.now())));
    const now = await admin.requestCounts();
    seen = {
      total: now.total - start.total,
      errors: now.errors - start.errors,
    };
    const rate = seen.total > 0 ? seen.errors / seen.total : 0;
    if (seen.total >= 10 && rate > baseRate + 0.01) {
      throw new Error(
        `5xx rate ${fmt(rate)} (${seen.errors} of ${seen.total}) against ${
          fmt(baseRate)
        } before`,
      );
    }
    const workers = await admin.workers();
    const bad = workers.find((w) => w.status !== "healthy");
    if (bad) {
      throw new Error(
        `worker ${bad.name} is ${bad.status}${
          bad.last_error ? `: ${bad.last_error}` : ""
        }`,
      );
    }
    const r = totalRestarts(workers);
    if (r > restarts) {
      throw new Error(`${r - restarts} worker restart(s) while watched`);
    }
    if (Date.now() >= end) break;
  }
  if (seen.total === 0) {
    logger.warn("canary saw no traffic", {
      url: admin.url,
      seconds: ms / 1000,
    });
  }
  logger.info("canary passed", {
    url: admin.url,
    requests: seen.total,
    errors: seen.errors,
  });
}

/** Options for {@linkcode restoreHosts}. */
export interface RestoreHostsOptions {
  /** Reload each restored host's server and wait until it is healthy. Default false. */
  reload?: boolean;
}

/**
 * Undoes deploy `id` on every host that took it (all at once: the fleet is
 * mixed until they are back), reloads them (with `reload`) and waits until
 * they are healthy. A host that failed keeps its reason, with what its
 * rollback did added.
 */
export async function restoreHosts(
  fleet: Fleet,
  id: string,
  options: RestoreHostsOptions = {},
): Promise<void> {
  const { reload = false } = options;
  await Promise.all([...fleet.took].map(async (i) => {
    const host = fleet.hosts[i]!;
    const report = fleet.reports[i]!;
    try {
      await host.sh(rollbackScript(id));
      if (reload) {
        const admin = fleet.admin(i);
        await reloadServer(host, { admin, pidFile: fleet.pidFile });
        if (admin) await waitAllHealthy(admin, fleet.healthTimeoutMs);
      }
      if (report.state === "failed") {
        report.reason = `${report.reason}; rolled back`;
      } else report.state = "rolled back";
      fleet.logger.info("host rolled back", { host: host.label, id });
    } catch (err) {
      const why = `rollback failed: ${(err as Error).message}`;
      report.reason = report.state === "failed"
        ? `${report.reason}; ${why}`
        : why;
      report.state = "failed";
      fleet.logger.error("host rollback failed", {
        host: host.label,
        id,
        error: err,
      });
    }
  }));
}

/** Waits until every worker of a host is healthy. */
export async function waitAllHealthy(
  admin: Admin,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const bad = (await admin.workers()).find((w) => w.status !== "healthy");
    if (!bad) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `worker ${bad.name} is ${bad.status} after ${timeoutMs / 1000} s`,
      );
    }
    await sleep(200);
  }
}
