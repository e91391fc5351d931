// Save-to-served latency in dev mode on the example `index` worker (Hono, the SDK, Eta views):
// from the write of workers/index/src/main.ts to (1) the first response with the new content
// and (2) a page open in headless Chromium that has reloaded and shows it. 10 edits; prints
// median and max of both, and where the time went, from the server's "dev change handled" lines.
//   deno run -A bench/dev_latency.ts [--debounce MS] [--edits N] [--no-browser]
import { parseArgs } from "node:util";
import { startServer } from "../tests/_helpers.ts";
import { exampleProject } from "../tests/_example.ts";
import type { Page } from "playwright-core";
import { type Chromium, launchChromium } from "../tests/_browser.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    debounce: { type: "string" },
    edits: { type: "string", default: "10" },
    "no-browser": { type: "boolean", default: false },
  },
});
const edits = Number(values.edits);

const project = exampleProject(
  values.debounce === undefined
    ? undefined
    : `deployment:\n  dev:\n    file_watcher:\n      debounce_ms: ${values.debounce}\n`,
);
const main = project.indexMain;
const original = Deno.readTextFileSync(main);
// Each edit changes a route's answer and the home page's title.
function edited(version: number): string {
  return original
    .replace(
      `site("Home", "/")`,
      `site("Home v${version}", "/")`,
    )
    .replace(
      "serve(app);",
      `app.get("/__bench", (c) => c.text("version ${version}"));\nserve(app);`,
    );
}
Deno.writeTextFileSync(main, edited(0));

const server = await startServer(project, ["--mode", "dev"], {
  main: project.main,
});

let browser: Chromium | undefined;
let page: Page | undefined;
if (!values["no-browser"]) {
  try {
    browser = await launchChromium();
    page = browser.context.pages()[0] ?? await browser.context.newPage();
    await page.goto(`${server.base}/`);
  } catch (err) {
    console.log(`(no browser measurement: ${err})`);
    await browser?.close();
    browser = undefined;
  }
}

const served: number[] = [];
const reloaded: number[] = [];
try {
  for (let i = 1; i <= edits; i++) {
    await new Promise((r) => setTimeout(r, 400));
    const started = performance.now();
    const inBrowser = page
      ? page.waitForFunction(
        `document.title.startsWith("Home v${i} ")`,
        undefined,
        { polling: "raf", timeout: 10_000 },
      ).then(() => performance.now() - started)
      : undefined;
    Deno.writeTextFileSync(main, edited(i));
    while (true) {
      const body = await (await fetch(`${server.base}/__bench`)).text();
      if (body === `version ${i}`) break;
      if (performance.now() - started > 10_000) {
        throw new Error(`Edit ${i} not served after 10 s`);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    served.push(performance.now() - started);
    if (inBrowser) reloaded.push(await inBrowser);
  }
} finally {
  await browser?.close();
  await server.stop();
  project.cleanup();
}

const logs = server.logs().split("\n").filter((l) =>
  l.includes("dev change handled")
);
const field = (name: string) =>
  logs.map((l) => new RegExp(` ${name}=(\\d+)`).exec(l)?.[1]).filter((x) =>
    x !== undefined
  ).map(Number);
const median = (xs: number[]) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : NaN;
const max = (xs: number[]) => xs.length ? Math.max(...xs) : NaN;
const show = (label: string, xs: number[]) =>
  console.log(
    `  ${label.padEnd(20)} median ${
      median(xs).toFixed(0).padStart(4)
    } ms   max ${max(xs).toFixed(0).padStart(4)} ms   each: ${
      xs.map((t) => t.toFixed(0)).join(" ")
    }`,
  );
console.log(
  `save-to-served, example index worker, ${served.length} edits (debounce ${
    values.debounce ?? "default"
  })`,
);
show("to served", served);
if (reloaded.length) show("to reloaded page", reloaded);
console.log("  phases (median of the server's own measurements):");
for (
  const [name, what] of [
    ["wait_ms", "first event to action (debounce)"],
    ["build_ms", "build (bundle, graph)"],
    ["start_ms", "new instance: spawn/activate, import, health"],
    ["total_ms", "first event to traffic switched"],
  ] as const
) {
  const xs = field(name);
  if (xs.length) {
    console.log(`    ${what.padEnd(46)} ${median(xs)} ms (max ${max(xs)})`);
  }
}

// The new instance's start, split at the line the worker logs once it listens:
// "restarting" (server) → "worker listening" (the worker's own clock) → "replaced" (server).
const all = server.logs().split("\n");
const stamp = (line: string, re: RegExp) => {
  const m = re.exec(line);
  return m ? Date.parse(m[1]!) : NaN;
};
const imports: number[] = [];
const healths: number[] = [];
let restarting = NaN;
let listening = NaN;
for (const line of all) {
  if (/INFO {2}worker restarting worker=index reason=build/.test(line)) {
    restarting = stamp(line, /^(\S+)/);
    listening = NaN;
  } else if (/\[index\] \S+ INFO {2}worker listening/.test(line)) {
    listening = stamp(line, /\[index\] (\S+)/);
  } else if (/INFO {2}worker replaced worker=index reason=build/.test(line)) {
    const replaced = stamp(line, /^(\S+)/);
    if (!isNaN(restarting) && !isNaN(listening)) {
      imports.push(listening - restarting);
      healths.push(replaced - listening);
    }
    restarting = NaN;
  }
}
if (imports.length) {
  console.log(
    `      of which: hand-over and import until listening ${
      median(imports)
    } ms (max ${max(imports)}), listening to healthy ${
      median(healths)
    } ms (max ${max(healths)})`,
  );
}
console.log(
  "  (graph lookup: in memory, no process; the machine's load was " +
    Deno.loadavg().map((x) => x.toFixed(1)).join(" ") + ")",
);
