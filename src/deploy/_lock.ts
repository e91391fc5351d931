// Folder-private: one deploy or rollback at a time per host. Two deploys to
// the same target (two terminals, two CI jobs) would interleave their stages,
// backups and reloads; the second one stops before it changes anything.
import type { Logger } from "../log/mod.ts";
import type { Host } from "./_host.ts";
import { lockScript, unlockScript } from "./_scripts.ts";

/** Options for {@linkcode lockHosts}. */
export interface LockHostsOptions {
  /** What the lock records: the deploy id, and who and where from (see {@linkcode lockHolder}). */
  holder: string;
  /** Where a lock that could not be released is reported. */
  logger: Logger;
}

/** The hosts' deploy locks, held until {@linkcode HostLocks.release}. */
export interface HostLocks {
  /** Releases every lock taken (best effort: a host that cannot be reached keeps its lock, logged). */
  release(): Promise<void>;
}

/** What a lock says of its holder: `id=… by=user@machine pid=… at=…`. */
export function lockHolder(id: string): string {
  let machine = "unknown";
  try {
    machine = Deno.hostname();
  } catch {
    // Without --allow-sys the lock still works; it only names less.
  }
  const user = Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "unknown";
  return `id=${id} by=${user}@${machine} pid=${Deno.pid} at=${
    new Date().toISOString()
  }`;
}

/**
 * Takes the deploy lock (`.tqdeploy/lock/`, made atomically with `mkdir`) on
 * every host at once. When any host is locked already, or cannot be locked,
 * the locks taken are released and nothing else happens.
 *
 * @throws {Error} Naming each host that refused and who holds its lock.
 */
export async function lockHosts(
  hosts: Host[],
  options: LockHostsOptions,
): Promise<HostLocks> {
  const { holder, logger } = options;
  const taken = await Promise.allSettled(
    hosts.map((h) => h.sh(lockScript(holder), { create: true })),
  );
  const locked = hosts.filter((_, i) => taken[i]!.status === "fulfilled");
  const release = async () => {
    await Promise.all(
      locked.map((h) =>
        h.sh(unlockScript(holder)).catch((err) =>
          logger.warn("deploy lock left on host", {
            host: h.label,
            error: err,
          })
        )
      ),
    );
  };
  const refused = taken.flatMap((t, i) =>
    t.status === "rejected"
      ? [`${hosts[i]!.label}: ${(t.reason as Error).message}`]
      : []
  );
  if (refused.length) {
    await release();
    throw new Error(refused.join("\n"));
  }
  return { release };
}
