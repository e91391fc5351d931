// A private copy of the server, the SDK and the example `index` worker (Hono, Eta views),
// for tests and benchmarks that edit it: nothing in the repository is touched.
import { join } from "node:path";
import {
  copyServer,
  freePort,
  freePortRange,
  type Project,
  REPO,
} from "./_helpers.ts";

/** Copies a folder, leaving out build outputs (`bin/`). */
export function copyDir(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const entry of Deno.readDirSync(from)) {
    if (entry.isDirectory) {
      if (entry.name !== "bin") {
        copyDir(join(from, entry.name), join(to, entry.name));
      }
    } else if (entry.isFile) {
      Deno.copyFileSync(join(from, entry.name), join(to, entry.name));
    }
  }
}

/** The example project: its `main.ts` (start the server with it) and the index worker's entry. */
export interface ExampleProject extends Project {
  /** The copy's `main.ts`. */
  main: string;
  /** `workers/index/src/main.ts` of the copy. */
  indexMain: string;
}

/** Copies the server and `workers/index` into a temporary root with free ports. */
export function exampleProject(deploymentYaml?: string): ExampleProject {
  const root = copyServer();
  copyDir(join(REPO, "workers", "index"), join(root, "workers", "index"));
  const adminPort = freePort();
  const poolStart = freePortRange(40);
  Deno.mkdirSync(join(root, "config"));
  Deno.writeTextFileSync(
    join(root, "config", "server.yaml"),
    `server:\n  admin:\n    port: ${adminPort}\nworkers:\n  port_range_start: ${poolStart}\n  port_range_end: ${
      poolStart + 39
    }\n`,
  );
  if (deploymentYaml) {
    Deno.writeTextFileSync(
      join(root, "config", "deployment.yaml"),
      deploymentYaml,
    );
  }
  return {
    root,
    adminPort,
    poolStart,
    main: join(root, "main.ts"),
    indexMain: join(root, "workers", "index", "src", "main.ts"),
    cleanup: () => Deno.removeSync(root, { recursive: true }),
  };
}
