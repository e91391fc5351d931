import type { DeployTarget } from "../config/mod.ts";
import { Admin } from "./_admin.ts";
import { runCommand, type RunFn, targetHosts } from "./_host.ts";
import { currentScript } from "./_scripts.ts";

/** Options for {@linkcode fleetStatus}. */
export interface FleetStatusOptions {
  /** Bearer token for the hosts' admin API. Default none. */
  adminToken?: string;
  /** Command runner (ssh). Default: `Deno.Command`. */
  run?: RunFn;
  /** fetch for admin APIs reachable from here. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** One worker of one host, from its `/api/status`. */
export interface FleetWorker {
  name: string;
  status: string;
  binary_mtime: string | null;
  restarts: number;
  last_error: string | null;
}

/** One host of `scripts/deploy.sh status`. */
export interface FleetHost {
  host: string;
  /** True when its server's admin API answered. */
  reachable: boolean;
  /** Why not, when it is not reachable. */
  error: string | null;
  /** The deploy id it runs (`.tqdeploy/current`), null when unknown or never deployed. */
  deploy_id: string | null;
  workers: FleetWorker[];
}

/**
 * Asks every host of a target, all at once, which deploy it runs (over ssh)
 * and what its workers do (its `/api/status`).
 */
export async function fleetStatus(
  target: DeployTarget,
  options: FleetStatusOptions = {},
): Promise<FleetHost[]> {
  const { adminToken = "", run = runCommand, fetch: fetchFn = fetch } = options;
  const hosts = targetHosts(target, { run });
  return await Promise.all(hosts.map(async (host): Promise<FleetHost> => {
    const out: FleetHost = {
      host: host.label,
      reachable: false,
      error: null,
      deploy_id: null,
      workers: [],
    };
    try {
      out.deploy_id =
        (await host.sh(currentScript(), { timeoutMs: 20_000 })).trim() || null;
    } catch (err) {
      out.error = (err as Error).message;
      return out;
    }
    if (!target.admin_url) {
      out.error = "no admin_url in the target";
      return out;
    }
    try {
      const admin = new Admin(host, target.admin_url, {
        token: adminToken,
        fetch: fetchFn,
      });
      out.workers = (await admin.workers()).map((w) => ({
        name: w.name,
        status: w.status,
        binary_mtime: w.binary_mtime,
        restarts: w.restarts,
        last_error: w.last_error,
      }));
      out.reachable = true;
    } catch (err) {
      out.error = (err as Error).message;
    }
    return out;
  }));
}

/** The fleet as a plain-text table, one line per worker (one per host when it has none). */
export function formatFleet(hosts: FleetHost[]): string {
  const rows = [[
    "HOST",
    "REACHABLE",
    "DEPLOY",
    "WORKER",
    "STATE",
    "BINARY MTIME",
    "RESTARTS",
    "LAST ERROR",
  ]];
  for (const h of hosts) {
    const head = [h.host, h.reachable ? "yes" : "no", h.deploy_id ?? "-"];
    if (!h.reachable || h.workers.length === 0) {
      rows.push([...head, "-", "-", "-", "-", h.error ?? "-"]);
      continue;
    }
    h.workers.forEach((w, i) => {
      rows.push([
        ...(i === 0 ? head : ["", "", ""]),
        w.name,
        w.status,
        w.binary_mtime ?? "-",
        String(w.restarts),
        w.last_error ?? "-",
      ]);
    });
  }
  const widths = rows[0]!.map((_, c) =>
    Math.max(...rows.map((r) => c === r.length - 1 ? 0 : r[c]!.length))
  );
  return rows.map((r) =>
    r.map((cell, c) => c === r.length - 1 ? cell : cell.padEnd(widths[c]!))
      .join("  ").trimEnd()
  )
    .join("\n");
}
