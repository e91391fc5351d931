// Cost of the SIGHUP check's stat pass for 100 workers: discovery plus the binary, newest
// public/ and newest private/ mtimes of each (one stat per file), as the check does it.
//   deno run -A bench/reload_check.ts [--workers N]
import { parseArgs } from "node:util";
import { join } from "node:path";
import { defaultConfig, discoverWorkers } from "../src/config/mod.ts";
import { workerMtimes } from "../src/reload/mtimes.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { workers: { type: "string", default: "100" } },
});
const count = Number(values.workers);
const root = Deno.makeTempDirSync({ prefix: "tq-bench-reload-" });
let files = 0;
for (let i = 0; i < count; i++) {
  const dir = join(root, "workers", `w${i}`);
  for (
    const sub of [
      "bin",
      "public/css",
      "public/js",
      "private/views",
      "private/templates",
    ]
  ) {
    Deno.mkdirSync(join(dir, sub), { recursive: true });
  }
  Deno.writeTextFileSync(join(dir, "bin", `w${i}`), "#!/bin/sh\n", {
    mode: 0o755,
  });
  for (
    const f of [
      "public/css/a.css",
      "public/js/a.js",
      "public/index.html",
      "private/views/home.html",
    ]
  ) {
    Deno.writeTextFileSync(join(dir, f), "x");
  }
  Deno.writeTextFileSync(join(dir, "private/templates/base.html"), "x");
  files += 6;
}
const config = defaultConfig();
const runs: number[] = [];
for (let i = 0; i < 21; i++) {
  const t0 = performance.now();
  const specs = await discoverWorkers(root, config);
  await Promise.all(specs.map((s) => workerMtimes(s.dir, s.binPath)));
  runs.push(performance.now() - t0);
}
Deno.removeSync(root, { recursive: true });
runs.sort((a, b) => a - b);
console.log(
  `check stat pass for ${count} workers (${files} files, ${count * 7} dirs): ` +
    `median ${runs[10]!.toFixed(1)} ms, min ${runs[0]!.toFixed(1)} ms, max ${
      runs[20]!.toFixed(1)
    } ms`,
);
