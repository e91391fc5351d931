import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { ConfigError, discoverWorkers, loadConfig } from "../config/mod.ts";
import { createLogger } from "../log/mod.ts";
import { deploy } from "./deploy.ts";

const USAGE =
  `Usage: scripts/deploy.sh [--dry-run] [--reload] [--rollback] [--root DIR] <target> [workers...]

Deploys workers (without src/) and, when no workers are named, config/ and server/ to the hosts of
deployment.targets.<target> in config/deployment.yaml, one host at a time. The replaced binary of
each worker is kept as bin/{name}.prev; --rollback puts it back and reloads.`;

/** `scripts/deploy.sh` entry point; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        "dry-run": { type: "boolean", default: false },
        reload: { type: "boolean", default: false },
        rollback: { type: "boolean", default: false },
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
    console.log(USAGE);
    return 0;
  }
  const [targetName, ...names] = positionals;
  if (!targetName) {
    console.error(`deploy: missing target\n\n${USAGE}`);
    return 2;
  }
  const root = resolve(values.root ?? Deno.cwd());
  const logger = createLogger();
  try {
    const { config } = await loadConfig({ root });
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
    const all = await discoverWorkers(root, config, {
      warn: (problem) => logger.warn("worker skipped", { problem }),
    });
    const unknown = names.filter((n) => !all.some((w) => w.name === n));
    if (unknown.length) {
      console.error(
        `deploy: unknown worker ${unknown.map((n) => `"${n}"`).join(", ")}`,
      );
      return 2;
    }
    const workers = names.length
      ? all.filter((w) => names.includes(w.name))
      : all;
    await deploy({
      root,
      name: targetName,
      target,
      workers,
      onlyWorkers: names.length > 0,
      dryRun: values["dry-run"],
      reload: values.reload,
      rollback: values.rollback,
      // The target runs this config (config/ is deployed with it), so its token.
      adminToken: config.server.admin.token,
      logger,
    });
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`deploy: bad config: ${err.message}`);
      return 2;
    }
    console.error(`deploy: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
