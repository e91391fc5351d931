import { parseArgs } from "node:util";
import { relative, resolve } from "node:path";
import {
  type Config,
  ConfigError,
  discoverWorkers,
  loadConfig,
} from "../config/mod.ts";
import { createLogger } from "../log/mod.ts";
import { changedFiles, deploy, summaryLines } from "./deploy.ts";
import { rollback } from "./rollback.ts";
import { fleetStatus, formatFleet } from "./status.ts";

const USAGE = `Usage:
  scripts/deploy.sh [--dry-run] [--reload] [--canary [SECONDS]] TARGET [workers...]
  scripts/deploy.sh --rollback TARGET [DEPLOY_ID]
  scripts/deploy.sh status TARGET [--json]
Options: --root DIR (project root, default the current directory), --help.

Deploys workers (without src/) and, when no workers are named, config/ and server/ to the hosts of
deployment.targets.TARGET in config/deployment.yaml with ssh and rsync, batch hosts at a time: each
host checks the SHA-256 manifest before anything changes there; with --reload it reloads and must
show the changed workers healthy before the next. --canary deploys the first host alone and
watches it (5xx rate, restarts) for SECONDS (default: the target's canary_seconds). Any failure
rolls back every host that took the deploy. --rollback undoes a deploy (default: the newest) and
every later one on every host. --dry-run lists per host the files that would change.`;

function print(line: string): void {
  console.log(line);
}

/** `--canary` takes an optional value: give it one when the next word is not a number. */
function normalizeCanary(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--canary") {
      const next = args[i + 1];
      if (next !== undefined && /^\d+(\.\d+)?$/.test(next)) {
        out.push(`--canary=${next}`);
        i++;
      } else out.push("--canary=");
    } else out.push(args[i]!);
  }
  return out;
}

/** `scripts/deploy.sh` entry point; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: normalizeCanary(args),
      allowPositionals: true,
      options: {
        "dry-run": { type: "boolean", default: false },
        reload: { type: "boolean", default: false },
        rollback: { type: "boolean", default: false },
        canary: { type: "string" },
        json: { type: "boolean", default: false },
        root: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    console.error(
      `deploy: ${err instanceof Error ? err.message : err}\n\n${USAGE}`,
    );
    return 2;
  }
  if (values.help) {
    print(USAGE);
    return 0;
  }
  const isStatus = positionals[0] === "status";
  const [targetName, ...rest] = isStatus ? positionals.slice(1) : positionals;
  if (!targetName) {
    console.error(`deploy: missing target\n\n${USAGE}`);
    return 2;
  }
  const root = resolve(values.root ?? Deno.cwd());
  const logger = createLogger();
  let config: Config;
  try {
    ({ config } = await loadConfig({ root }));
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`deploy: bad config: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const target = config.deployment.targets[targetName];
  if (!target) {
    const known = Object.keys(config.deployment.targets);
    console.error(
      `deploy: unknown target "${targetName}" (config/deployment.yaml deployment.targets has: ${
        known.length ? known.map((k) => `"${k}"`).join(", ") : "none"
      })`,
    );
    return 2;
  }
  if (!target.path) {
    console.error(
      `deploy: deployment.targets.${targetName}.path is empty (the project root on each host)`,
    );
    return 2;
  }
  // The hosts run this config (config/ is deployed with it): its token and PID file.
  const adminToken = config.server.admin.token;
  const pidFile = config.server.pid_file;
  try {
    if (isStatus) {
      const hosts = await fleetStatus(target, { adminToken });
      print(
        values.json
          ? JSON.stringify({ target: targetName, hosts }, null, 2)
          : formatFleet(hosts),
      );
      return hosts.every((h) => h.reachable) ? 0 : 1;
    }
    if (values.rollback) {
      if (rest.length > 1) {
        console.error(
          `deploy: --rollback takes a target and at most one deploy id\n\n${USAGE}`,
        );
        return 2;
      }
      const result = await rollback({
        target,
        ...(rest[0] ? { id: rest[0] } : {}),
        adminToken,
        pidFile,
        logger,
      });
      print(`rollback of ${result.id || "(none)"} on ${targetName}:`);
      for (const line of summaryLines(result)) {
        print(line);
      }
      return result.ok ? 0 : 1;
    }
    const all = await discoverWorkers(root, config, {
      warn: (problem) => logger.warn("worker skipped", { problem }),
    });
    const unknown = rest.filter((n) => !all.some((w) => w.name === n));
    if (unknown.length) {
      console.error(
        `deploy: unknown worker ${unknown.map((n) => `"${n}"`).join(", ")}`,
      );
      return 2;
    }
    const canary = values.canary === undefined
      ? undefined
      : values.canary === ""
      ? target.canary_seconds
      : Number(values.canary);
    if (canary !== undefined && !values.reload) {
      console.error(
        `deploy: --canary needs --reload (a canary is watched while it serves the new build)`,
      );
      return 2;
    }
    const result = await deploy({
      root,
      name: targetName,
      target,
      workers: rest.length ? all.filter((w) => rest.includes(w.name)) : all,
      workersDir: relative(root, resolve(root, config.workers.workers_dir)),
      onlyWorkers: rest.length > 0,
      dryRun: values["dry-run"],
      reload: values.reload,
      ...(canary !== undefined ? { canarySeconds: canary } : {}),
      adminToken,
      pidFile,
      logger,
    });
    for (const w of result.warnings) console.error(`deploy: warning: ${w}`);
    if (values["dry-run"]) {
      for (const h of result.hosts) {
        print(
          `${h.host}: ${
            h.state === "failed"
              ? `failed: ${h.reason}`
              : `${changedFiles(h)} change(s)`
          }`,
        );
        for (const c of h.changes) print(`  ${c.kind.padEnd(7)} ${c.path}`);
      }
      return result.ok ? 0 : 1;
    }
    print(
      `deploy ${result.id || "(not started)"} to ${targetName}: ${
        result.ok ? "done" : "FAILED"
      } in ${(result.ms / 1000).toFixed(1)} s${
        result.rollbackMs !== undefined
          ? ` (rolled back in ${(result.rollbackMs / 1000).toFixed(1)} s)`
          : ""
      }`,
    );
    for (const line of summaryLines(result)) print(line);
    return result.ok ? 0 : 1;
  } catch (err) {
    console.error(`deploy: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
