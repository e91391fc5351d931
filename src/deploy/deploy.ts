import { join } from "node:path";
import type { DeployTarget, WorkerSpec } from "../config/mod.ts";
import { silentLogger } from "../log/mod.ts";
import { reloadServer } from "./_admin.ts";
import { runCommand } from "./_host.ts";
import { lockHolder, lockHosts } from "./_lock.ts";
import {
  buildManifest,
  filterArgs,
  listShipped,
  newDeployId,
  parseChanges,
  planShipment,
  shipWarnings,
} from "./_release.ts";
import {
  discardScript,
  inspectScript,
  prepareScript,
  verifyApplyScript,
} from "./_scripts.ts";
import {
  type FleetOptions,
  openFleet,
  restoreHosts,
  waitHealthy,
  watchCanary,
} from "./_roll.ts";
import type { HostReport } from "./types.ts";

export type { HostReport, HostState } from "./types.ts";

/** Options for {@linkcode deploy}. */
export interface DeployOptions extends FleetOptions {
  /** Project root (the source of the deploy). */
  root: string;
  /** Target name, for messages. */
  name: string;
  /** The target from `deployment.targets`. */
  target: DeployTarget;
  /** Workers to deploy. */
  workers: WorkerSpec[];
  /** Root-relative workers folder (`workers.workers_dir`), mirrored on a whole deploy. Default `workers`. */
  workersDir?: string;
  /** True when the user named workers (then config/, server/ and other workers are left alone). Default false. */
  onlyWorkers?: boolean;
  /** List per host the files that would change; change nothing. Default false. */
  dryRun?: boolean;
  /** Reload each host and wait until its changed workers are healthy before the next. Default false. */
  reload?: boolean;
  /** Deploy the first host alone and watch it this many seconds before the rest; undefined = no canary. */
  canarySeconds?: number;
}

/** What a deploy did. */
export interface DeployResult {
  /** The deploy id (also in each host's `.tqdeploy/current`). */
  id: string;
  ok: boolean;
  hosts: HostReport[];
  /** Warnings the user should see (stale builds, skipped workers). */
  warnings: string[];
  /** Wall time of the whole deploy, in ms. */
  ms: number;
  /** From the failure to every host back on the old release, in ms (when a rollback ran). */
  rollbackMs?: number;
}

/**
 * Deploys to every host of a target, one host (or `batch` hosts) at a time:
 * transfer to a stage beside the serving tree, check the SHA-256 manifest,
 * apply with everything replaced or deleted kept for `--rollback`, reload,
 * and wait until the changed workers are healthy on their new binaries.
 * With a canary the first host is watched first. Any failure stops the roll
 * and rolls back every host that took the deploy.
 *
 * @returns Per host where it stands; `ok` is false after a failure.
 * @throws {Error} Before any host is touched: nothing to ship, or a guard
 *   (the compiled server would be deleted, rsync missing on a host).
 *
 * @example
 * ```ts
 * const result = await deploy({ root, name: "production", target, workers, reload: true });
 * for (const line of summaryLines(result)) console.log(line);
 * ```
 */
export async function deploy(options: DeployOptions): Promise<DeployResult> {
  const {
    root,
    target,
    workers,
    workersDir = "workers",
    onlyWorkers = false,
    dryRun = false,
    reload = false,
    canarySeconds,
    logger = silentLogger,
    run = runCommand,
  } = options;
  const started = performance.now();
  const plan = await planShipment(root, workers, { workersDir, onlyWorkers });
  if (plan.workers.length === 0 && plan.extras.length === 0) {
    throw new Error(
      `Nothing to deploy: no worker has a binary${
        onlyWorkers ? "" : " and there is no config/ or server/"
      }`,
    );
  }
  const warned = await shipWarnings(root, plan);
  for (const w of warned) logger.warn("deploy warning", { problem: w });
  const fleet = openFleet(target, options);
  const { hosts, reports } = fleet;
  const result = (id: string, ok: boolean): DeployResult => ({
    id,
    ok,
    hosts: reports,
    warnings: warned,
    ms: Math.round(performance.now() - started),
  });

  // A read-only look at every host first: an unreachable host or a guard
  // stops the deploy before any host has changed.
  const looks = await Promise.allSettled(
    hosts.map((h) =>
      h.sh(inspectScript(), { ifExists: true, timeoutMs: 30_000 })
    ),
  );
  const problems: string[] = [];
  looks.forEach((look, i) => {
    if (look.status === "rejected") {
      reports[i]!.state = "failed";
      reports[i]!.reason = (look.reason as Error).message;
      return;
    }
    const info = look.value;
    if (
      hosts[i]!.login && !/^rsync=1$/m.test(info)
    ) {
      problems.push(
        `rsync is not installed on ${hosts[i]!.label} (apt-get install rsync)`,
      );
    }
    if (/^compiled=1$/m.test(info) && plan.extras.includes("server")) {
      try {
        Deno.statSync(join(root, "server", "bin", "tqserver"));
      } catch {
        problems.push(
          `${
            hosts[i]!.label
          } runs the compiled server (server/bin/tqserver) but it is not here: ` +
            `shipping server/ would delete it. Build it (./compile.sh) or deploy named workers only`,
        );
      }
    }
  });
  if (problems.length) throw new Error(problems.join("\n"));
  if (reports.some((r) => r.state === "failed")) return result("", false);

  if (dryRun) {
    for (const [i, host] of hosts.entries()) {
      try {
        const out = await host.rsync(
          [
            "-a",
            "--dry-run",
            "--checksum",
            "--delete",
            "--itemize-changes",
            ...filterArgs(plan.rules),
            `${root}/`,
          ],
          "",
        );
        reports[i]!.changes = parseChanges(out);
        reports[i]!.state = "would change";
      } catch (err) {
        reports[i]!.state = "failed";
        reports[i]!.reason = (err as Error).message;
      }
    }
    return result("", reports.every((r) => r.state !== "failed"));
  }

  const id = newDeployId();
  // One deploy at a time per host: a second one stops here, having changed nothing.
  const locks = await lockHosts(hosts, { holder: lockHolder(id), logger });
  try {
    const files = await listShipped(root, plan.rules, { run });
    const manifest = await buildManifest(root, files);
    logger.info("deploy started", {
      target: options.name,
      id,
      files: files.length,
      hosts: hosts.length,
    });

    const ship = async (i: number): Promise<void> => {
      const host = hosts[i]!;
      const report = reports[i]!;
      try {
        // The manifest comes on stdin, the filter in the script: one round trip.
        await host.sh(prepareScript(id, plan.rules), {
          create: true,
          stdin: manifest,
        });
        // Unchanged files are hard-linked from the serving tree: only what
        // changed crosses the network. Compared by checksum: a rebuild of
        // the same size in the same second passes rsync's quick check.
        await host.rsync(
          [
            "-a",
            "--checksum",
            "--link-dest=../..",
            ...filterArgs(plan.rules),
            `${root}/`,
          ],
          ".tqdeploy/stage/",
        );
        const out = await host.sh(verifyApplyScript(id, target.keep_releases));
        fleet.took.add(i);
        report.changes = parseChanges(out);
        report.state = "deployed";
        logger.info("host updated", {
          host: host.label,
          id,
          changes: report.changes.length,
        });
      } catch (err) {
        report.state = "failed";
        report.reason = (err as Error).message;
        if (!fleet.took.has(i)) {
          await host.sh(discardScript(id)).catch((cleanup) =>
            logger.warn("stage left on host", {
              host: host.label,
              id,
              error: cleanup,
            })
          );
        }
        throw err;
      }
      if (!reload) return;
      const admin = fleet.admin(i);
      try {
        const via = await reloadServer(host, { admin, pidFile: fleet.pidFile });
        report.reloaded = true;
        if (admin) {
          await waitHealthy(admin, {
            changes: report.changes,
            shipped: plan.workers,
            timeoutMs: fleet.healthTimeoutMs,
          });
        } else {
          logger.warn("no admin_url: reloaded without a health check", {
            host: host.label,
            via,
          });
        }
        logger.info("host live", { host: host.label, id, via });
      } catch (err) {
        report.state = "failed";
        report.reason = (err as Error).message;
        throw err;
      }
    };

    const order = hosts.map((_, i) => i);
    const batches: number[][] = [];
    let rest = order;
    if (canarySeconds !== undefined && reload && order.length > 0) {
      batches.push([0]);
      rest = order.slice(1);
    }
    for (let i = 0; i < rest.length; i += target.batch) {
      batches.push(rest.slice(i, i + target.batch));
    }
    let failedAt: number | undefined;
    for (const [b, batch] of batches.entries()) {
      const canary = b === 0 && canarySeconds !== undefined && reload;
      const admin = canary ? fleet.admin(0) : undefined;
      const before = admin
        ? await admin.requestCounts().catch((err) => {
          // Without a baseline the canary is judged against a 0% rate.
          logger.warn("canary baseline unavailable", {
            url: admin.url,
            error: err,
          });
          return undefined;
        })
        : undefined;
      const settled = await Promise.allSettled(batch.map(ship));
      if (settled.some((s) => s.status === "rejected")) {
        failedAt = performance.now();
        break;
      }
      if (canary && admin) {
        try {
          await watchCanary(admin, {
            before,
            ms: canarySeconds * 1000,
            logger,
          });
        } catch (err) {
          reports[0]!.state = "failed";
          reports[0]!.reason = `canary: ${(err as Error).message}`;
          failedAt = performance.now();
          break;
        }
      }
    }
    if (failedAt === undefined) return result(id, true);
    logger.error("deploy failed, rolling back", {
      id,
      hosts: [...fleet.took].map((i) => hosts[i]!.label).join(",") || "-",
    });
    await restoreHosts(fleet, id, { reload });
    const done = result(id, false);
    done.rollbackMs = Math.round(performance.now() - failedAt);
    return done;
  } finally {
    await locks.release();
  }
}

/** The changes that are files (created directories left out of counts). */
export function changedFiles(report: HostReport): number {
  return report.changes.filter((c) => !c.path.endsWith("/")).length;
}

/** One line per host: `web1 deployed`, `web2 failed: …`, `web3 untouched`. */
export function summaryLines(result: { hosts: HostReport[] }): string[] {
  return result.hosts.map((h) => {
    const what = h.state === "failed"
      ? `failed: ${h.reason ?? "unknown error"}`
      : h.state;
    const n = changedFiles(h);
    const more = h.state === "deployed" || h.state === "would change"
      ? ` (${n} file${n === 1 ? "" : "s"} changed)`
      : h.reason && h.state !== "failed"
      ? ` (${h.reason})`
      : "";
    return `${h.host} ${what}${more}`;
  });
}
