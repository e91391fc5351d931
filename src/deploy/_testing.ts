// Folder-private test helpers: a worker project to ship and a local directory
// target to ship it to.
import { join } from "node:path";
import type { DeployTarget, WorkerSpec } from "../config/mod.ts";
import { defaultWorkerSettings } from "../config/mod.ts";

/** True when rsync runs here; the tests that ship files are ignored without it. */
export const hasRsync: boolean = (() => {
  try {
    return new Deno.Command("rsync", { args: ["--version"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** The spec of the binary worker `name` in `dir`, served at `route`. */
export function binaryWorker(
  dir: string,
  name: string,
  route: string,
): WorkerSpec {
  return {
    name,
    dir,
    route,
    kind: "binary",
    entry: undefined,
    binPath: join(dir, "bin", name),
    settings: defaultWorkerSettings(),
  };
}

/** Creates `workers/index` (bin/, public/, private/views/) under `root` and returns its spec. */
export function project(root: string): WorkerSpec {
  const dir = join(root, "workers", "index");
  Deno.mkdirSync(join(dir, "bin"), { recursive: true });
  Deno.mkdirSync(join(dir, "public"), { recursive: true });
  Deno.mkdirSync(join(dir, "private", "views"), { recursive: true });
  return binaryWorker(dir, "index", "/");
}

/** Writes a new build of `workers/index` under `root`: a binary tagged `tag` and `files` (relative to the worker). */
export function build(
  root: string,
  tag: string,
  files: Record<string, string>,
): void {
  const bin = join(root, "workers", "index", "bin", "index");
  Deno.writeTextFileSync(bin, `#!/bin/sh\n# ${tag}\n`, { mode: 0o755 });
  Deno.chmodSync(bin, 0o755);
  for (const [rel, text] of Object.entries(files)) {
    Deno.writeTextFileSync(join(root, "workers", "index", rel), text);
  }
}

/** Options of {@linkcode localDeploy}. */
export interface LocalDeployOptions {
  /** The target directory's name inside `tmp`. Default `"target"`. */
  dir?: string;
  /** The target's `keep_releases`. Default 5. */
  keepReleases?: number;
}

/**
 * A project in `tmp/src` (see {@linkcode project}) and a target that is the
 * local directory `tmp/{dir}` (no hosts, no admin URL).
 */
export function localDeploy(
  tmp: string,
  options: LocalDeployOptions = {},
): { src: string; path: string; target: DeployTarget; worker: WorkerSpec } {
  const { dir = "target", keepReleases = 5 } = options;
  const src = join(tmp, "src");
  const path = join(tmp, dir);
  const target: DeployTarget = {
    hosts: [],
    path,
    ssh_options: "",
    admin_url: "",
    batch: 1,
    canary_seconds: 0,
    keep_releases: keepReleases,
  };
  return { src, path, target, worker: project(src) };
}
