// Save-to-served latency in dev mode: from the write of a worker's src/main.ts to the
// first response with the new content, over 10 edits. Prints median and max, and where
// the time goes (debounce, build, worker start) from the server's own log lines.
//   deno run -A bench/dev_latency.ts [--debounce MS] [--edits N]
import { parseArgs } from "node:util";
import { join } from "node:path";
import { makeProject, startServer } from "../tests/_helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    debounce: { type: "string", default: "50" },
    edits: { type: "string", default: "10" },
  },
});
const debounce = Number(values.debounce);
const edits = Number(values.edits);

function source(version: number): string {
  return `const server = Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("TQ_PORT")), onListen() {} },
  (req) => new URL(req.url).pathname === "/health" ? new Response("ok") : new Response("version ${version}"));
Deno.addSignalListener("SIGTERM", () => server.shutdown());
(async () => { for await (const _ of Deno.stdin.readable) { /* never written */ } Deno.exit(0); })();
`;
}

const project = makeProject({
  workers: {},
  deploymentYaml:
    `deployment:\n  dev:\n    file_watcher:\n      debounce_ms: ${debounce}\n`,
});
const main = join(project.root, "workers", "hello", "src", "main.ts");
Deno.mkdirSync(join(project.root, "workers", "hello", "src"), {
  recursive: true,
});
Deno.writeTextFileSync(main, source(0));
const server = await startServer(project, ["--mode", "dev"]);
const times: number[] = [];
try {
  for (let i = 1; i <= edits; i++) {
    await new Promise((r) => setTimeout(r, 300));
    const started = performance.now();
    Deno.writeTextFileSync(main, source(i));
    while (true) {
      const body = await (await fetch(`${server.base}/hello`)).text();
      if (body === `version ${i}`) break;
      if (performance.now() - started > 10_000) {
        throw new Error(`Edit ${i} not served after 10 s`);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    times.push(performance.now() - started);
  }
} finally {
  await server.stop();
  project.cleanup();
}

const logs = server.logs().split("\n");
const numbers = (re: RegExp) =>
  logs.map((l) => re.exec(l)?.[1]).filter((x) => x !== undefined).map(Number);
const buildMs = numbers(/INFO {2}build worker=hello status=built ms=(\d+)/);
const startMs = numbers(
  /worker replaced worker=hello reason=build .* ms=(\d+)/,
);
const sorted = [...times].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)]!;
const avg = (xs: number[]) =>
  xs.length ? Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) : NaN;
console.log(
  `save-to-served over ${times.length} edits (debounce ${debounce} ms)`,
);
console.log(`  each:   ${times.map((t) => t.toFixed(0)).join(" ")} ms`);
console.log(
  `  median: ${median.toFixed(0)} ms   max: ${
    sorted[sorted.length - 1]!.toFixed(0)
  } ms`,
);
console.log(
  `  spent on: debounce ${debounce} ms, build (deno bundle + graph) ~${
    avg(buildMs)
  } ms, ` +
    `new instance start + health ~${
      avg(startMs)
    } ms, rest (watch event, polling) ~${
      Math.max(0, Math.round(median - debounce - avg(buildMs) - avg(startMs)))
    } ms`,
);
