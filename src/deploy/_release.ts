// Folder-private: what a deploy ships (rsync filter rules), its SHA-256
// manifest, and what the apply on a host changed.
import { dirname, join, relative } from "node:path";
import type { WorkerSpec } from "../config/mod.ts";
import { runCommand, type RunFn } from "./_host.ts";

/** A worker a deploy ships. */
export interface ShippedWorker {
  name: string;
  /** Root-relative worker folder, e.g. `workers/index`. */
  dir: string;
  /** Root-relative binary, e.g. `workers/index/bin/index`. */
  bin: string;
  /** The binary's mtime here, in ms (rsync keeps it on the host). */
  binMtimeMs: number;
}

/** What a deploy ships from the project root. */
export interface ShipPlan {
  /** rsync filter rules (first match wins), the last one `- *`. */
  rules: string[];
  workers: ShippedWorker[];
  /** Workers left alone: no binary yet. */
  skipped: string[];
  /** Top-level folders shipped whole (`config`, `server`) that exist here. */
  extras: string[];
}

/** Options for {@linkcode planShipment}. */
export interface PlanShipmentOptions {
  /** Root-relative folder of the workers (`workers.workers_dir`), e.g. `workers`. */
  workersDir: string;
  /** Ship only these workers (no config/, server/, no removal of other workers). Default false. */
  onlyWorkers?: boolean;
}

async function mtimeOf(path: string): Promise<number | undefined> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile || ((info.mode ?? 0o755) & 0o111) === 0) return undefined;
    return info.mtime?.getTime() ?? 0;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function ancestors(rel: string): string[] {
  const out: string[] = [];
  for (let d = dirname(rel); d !== "." && d !== "/"; d = dirname(d)) {
    out.unshift(d);
  }
  return out;
}

/**
 * Works out what to ship: each worker folder without `src/` and with only
 * its own binary from `bin/`, and (for a whole deploy) the workers folder
 * mirrored, `config/` and `server/`.
 */
export async function planShipment(
  root: string,
  workers: WorkerSpec[],
  options: PlanShipmentOptions,
): Promise<ShipPlan> {
  const { workersDir, onlyWorkers = false } = options;
  const shipped: ShippedWorker[] = [];
  const skipped: string[] = [];
  const include = new Set<string>();
  const rules: string[] = [];
  const add = (rule: string) => {
    if (!include.has(rule)) {
      include.add(rule);
      rules.push(rule);
    }
  };
  for (const w of workers) {
    const mtime = await mtimeOf(w.binPath);
    const dir = relative(root, w.dir);
    if (mtime === undefined) {
      skipped.push(w.name);
      continue;
    }
    const bin = relative(root, w.binPath);
    shipped.push({ name: w.name, dir, bin, binMtimeMs: mtime });
    for (const a of ancestors(bin)) add(`+ /${a}/`);
    add(`+ /${bin}`);
  }
  for (const w of workers) {
    const dir = relative(root, w.dir);
    if (skipped.includes(w.name)) {
      add(`- /${dir}/`);
      continue;
    }
    add(`- /${dir}/src/`);
    const binDir = dirname(relative(root, w.binPath));
    if (binDir !== dir && (binDir + "/").startsWith(dir + "/")) {
      add(`- /${binDir}/*`);
    }
  }
  const extras: string[] = [];
  if (onlyWorkers) {
    for (const w of shipped) {
      for (const a of ancestors(w.dir)) add(`+ /${a}/`);
      add(`+ /${w.dir}/***`);
    }
  } else {
    const wd = relative(root, join(root, workersDir));
    if (wd && !wd.startsWith("..")) {
      for (const a of ancestors(wd)) add(`+ /${a}/`);
      add(`+ /${wd}/***`);
    }
    for (const dir of ["config", "server"]) {
      if (await exists(join(root, dir))) {
        extras.push(dir);
        add(`+ /${dir}/***`);
      }
    }
  }
  add("- *");
  return { rules, workers: shipped, skipped, extras };
}

async function newestSourceMtime(dir: string): Promise<number> {
  let newest = 0;
  const walk = async (d: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(d));
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        newest = Math.max(newest, (await Deno.stat(p)).mtime?.getTime() ?? 0);
      }
    }
  };
  await walk(dir);
  return newest;
}

/**
 * What the user should hear before a deploy: workers skipped for want of a
 * binary, and builds older than their sources (shipped anyway).
 */
export async function shipWarnings(
  root: string,
  plan: ShipPlan,
): Promise<string[]> {
  const out: string[] = [];
  for (const name of plan.skipped) {
    out.push(
      `worker "${name}" skipped: it has no executable binary yet (build it first: scripts/build-prod.sh)`,
    );
  }
  for (const w of plan.workers) {
    const src = await newestSourceMtime(join(root, w.dir, "src"));
    if (src > w.binMtimeMs) {
      out.push(
        `worker "${w.name}": its build ${w.bin} is older than its sources (src/ changed ${
          new Date(src).toISOString()
        }); build before deploying, or this ships the old build`,
      );
    }
  }
  return out;
}

/** rsync arguments that apply `rules`. */
export function filterArgs(rules: string[]): string[] {
  return rules.map((r) => `--filter=${r}`);
}

/** Options for {@linkcode listShipped}. */
export interface ListShippedOptions {
  /** Command runner (rsync). Default {@linkcode runCommand}. */
  run?: RunFn;
}

/**
 * The root-relative files `rules` select here, as rsync sees them (so the
 * manifest lists exactly what rsync sends).
 */
export async function listShipped(
  root: string,
  rules: string[],
  options: ListShippedOptions = {},
): Promise<string[]> {
  const { run = runCommand } = options;
  const empty = await Deno.makeTempDir({ prefix: "tq-deploy-list-" });
  try {
    const res = await run([
      "rsync",
      "-a",
      "--dry-run",
      "--out-format=%i %n",
      ...filterArgs(rules),
      `${root}/`,
      `${empty}/`,
    ]);
    if (res.code !== 0) {
      throw new Error(
        `Listing the files to ship failed (rsync exit ${res.code}): ${res.stderr.trim()}`,
      );
    }
    return res.stdout.split("\n").filter((l) => l.startsWith(">f")).map((l) =>
      l.slice(12)
    );
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
}

async function sha256File(path: string): Promise<string> {
  const data = await Deno.readFile(path);
  const digest = await crypto.subtle.digest("SHA-256", data);
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/**
 * The manifest in `sha256sum` format (`HEX  path`, one line per file), so a
 * host checks it with `sha256sum -c` and nothing else installed.
 *
 * @throws {RangeError} For a file name `sha256sum` cannot carry (newline or backslash).
 */
export async function buildManifest(
  root: string,
  files: string[],
): Promise<string> {
  const lines: string[] = [];
  for (let i = 0; i < files.length; i += 8) {
    const batch = files.slice(i, i + 8);
    const sums = await Promise.all(batch.map((f) => sha256File(join(root, f))));
    batch.forEach((f, j) => {
      if (/[\n\\]/.test(f)) {
        throw new RangeError(
          `Cannot ship a file whose name has a newline or backslash: ${
            JSON.stringify(f)
          }`,
        );
      }
      lines.push(`${sums[j]}  ${f}`);
    });
  }
  return lines.join("\n") + (lines.length ? "\n" : "");
}

/** One line of rsync's `--itemize-changes`. */
export interface Change {
  kind: "created" | "updated" | "deleted";
  path: string;
}

/** Parses rsync `--itemize-changes` output into changed files (attribute-only directory lines dropped). */
export function parseChanges(output: string): Change[] {
  const out: Change[] = [];
  for (const line of output.split("\n")) {
    if (line.length < 13) continue;
    const flags = line.slice(0, 11);
    let path = line.slice(12);
    if (flags.startsWith("*deleting")) {
      out.push({ kind: "deleted", path });
      continue;
    }
    if (flags[1] === "L") path = path.replace(/ -> .*$/, "");
    if (flags[1] === "d" && !flags.includes("+")) continue;
    if (!/^[<>ch.]/.test(flags)) continue;
    if (flags[0] === "." && flags[1] !== "L") continue;
    out.push({ kind: flags.includes("+++") ? "created" : "updated", path });
  }
  return out;
}

/** Which workers a set of changes touched, and how. */
export interface ChangedWorker {
  name: string;
  binary: boolean;
  private: boolean;
  public: boolean;
  other: boolean;
}

/** Maps changed paths to the workers they belong to; `config` is true when `config/` changed. */
export function changedWorkers(
  changes: Change[],
  workers: ShippedWorker[],
): { workers: ChangedWorker[]; config: boolean } {
  const byName = new Map<string, ChangedWorker>();
  let config = false;
  for (const { path } of changes) {
    if (path.startsWith("config/")) config = true;
    for (const w of workers) {
      const get = () => {
        let c = byName.get(w.name);
        if (!c) {
          c = {
            name: w.name,
            binary: false,
            private: false,
            public: false,
            other: false,
          };
          byName.set(w.name, c);
        }
        return c;
      };
      if (path === w.bin) get().binary = true;
      else if (path.startsWith(w.dir + "/")) {
        const sub = path.slice(w.dir.length + 1);
        if (sub.startsWith("private/")) get().private = true;
        else if (sub.startsWith("public/")) get().public = true;
        else if (sub !== "") get().other = true;
      }
    }
  }
  return { workers: [...byName.values()], config };
}

/** A deploy id: UTC time to the second and 4 random hex digits, sortable by time. */
export function newDeployId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const rand = crypto.getRandomValues(new Uint8Array(2));
  return `${stamp}-${
    Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/** The shape of a deploy id (a user-given one reaches a remote script only when it matches). */
export const DEPLOY_ID = /^\d{8}T\d{6}Z-[0-9a-f]{4}$/;
