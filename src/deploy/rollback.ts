import type { DeployTarget } from "../config/mod.ts";
import { silentLogger } from "../log/mod.ts";
import { lockHolder, lockHosts } from "./_lock.ts";
import { DEPLOY_ID } from "./_release.ts";
import { type FleetOptions, openFleet, restoreHosts } from "./_roll.ts";
import { inspectScript } from "./_scripts.ts";
import type { HostReport } from "./types.ts";

/** Options for {@linkcode rollback}. */
export interface RollbackOptions extends FleetOptions {
  /** The target from `deployment.targets`. */
  target: DeployTarget;
  /** The deploy to undo (with every later one); default: the newest deploy the hosts run. */
  id?: string;
  /** Reload each host after its files are back and wait until it is healthy. Default true. */
  reload?: boolean;
}

/** What a rollback did. */
export interface RollbackResult {
  /** The deploy undone (with every later one). */
  id: string;
  ok: boolean;
  hosts: HostReport[];
}

/**
 * Undoes a deploy on every host of a target: each host deletes what that
 * deploy (and every later one) created and puts back every file it replaced
 * or deleted — binaries, `public/`, `private/`, config — then reloads and is
 * checked healthy. A host whose kept history lacks the deploy is left alone
 * and reported.
 *
 * @throws {RangeError} For an `id` that is not a deploy id.
 */
export async function rollback(
  options: RollbackOptions,
): Promise<RollbackResult> {
  const {
    target,
    reload = true,
    logger = silentLogger,
  } = options;
  if (options.id !== undefined && !DEPLOY_ID.test(options.id)) {
    throw new RangeError(
      `"${options.id}" is not a deploy id (e.g. "20260101T120000Z-3fa2"; see scripts/deploy.sh status)`,
    );
  }
  const fleet = openFleet(target, options);
  const { hosts, reports } = fleet;
  const looks = await Promise.allSettled(
    hosts.map((h) =>
      h.sh(inspectScript(), { ifExists: true, timeoutMs: 30_000 })
    ),
  );
  const current = looks.map((l, i) => {
    if (l.status === "rejected") {
      reports[i]!.state = "failed";
      reports[i]!.reason = (l.reason as Error).message;
      return "";
    }
    return /^current=(.*)$/m.exec(l.value)?.[1]?.trim() ?? "";
  });
  const id = options.id ??
    current.filter((c) => DEPLOY_ID.test(c)).sort().at(-1);
  if (!id) {
    return {
      id: "",
      ok: false,
      hosts: reports.map((r) =>
        r.state === "failed" ? r : { ...r, reason: "no deploy to roll back" }
      ),
    };
  }
  hosts.forEach((_, i) => {
    if (reports[i]!.state !== "failed" && current[i]) fleet.took.add(i);
    else if (reports[i]!.state !== "failed") {
      reports[i]!.reason = "has no deploy";
    }
  });
  const reachable = hosts.filter((_, i) => reports[i]!.state !== "failed");
  const locks = await lockHosts(reachable, {
    holder: lockHolder(`rollback-${id}`),
    logger,
  });
  try {
    await restoreHosts(fleet, id, { reload });
  } finally {
    await locks.release();
  }
  return {
    id,
    ok: reports.every((r) => r.state !== "failed"),
    hosts: reports,
  };
}
