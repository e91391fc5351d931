// Dev mode in a real headless Chromium: a worker that crashes after a reload shows its
// source-mapped error over the page, the fix reloads the page, and a type error only
// shows a warning in a corner while the new build serves.
import assert from "node:assert/strict";
import { CHROMIUM, hasChromium, launchChromium } from "./_browser.ts";
import { makeProject, startServer, waitFor } from "./_helpers.ts";
import { writeSource } from "./_dev_events.ts";

if (!hasChromium) {
  console.log(
    `skip: ${CHROMIUM} is not installed; the dev overlay test does not run`,
  );
}

// An HTML page worker; `prelude` runs at start. Line 1 is the prelude's first line.
function pageWorker(title: string, prelude = ""): string {
  return `${prelude}
const server = Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("TQ_PORT")), onListen() {} }, (req) => {
  if (new URL(req.url).pathname === "/health") return new Response("ok");
  return new Response(\`<!doctype html><html><head><title>\${${title}}</title></head><body><h1>hi</h1></body></html>\`, {
    headers: { "content-type": "text/html; charset=utf-8" },
  });
});
Deno.addSignalListener("SIGTERM", () => server.shutdown().then(() => Deno.exit(0)));
(async () => { for await (const _ of Deno.stdin.readable) { /* never written */ } Deno.exit(0); })();
`;
}

Deno.test({
  name:
    `the browser overlay shows a crash source-mapped, clears on the fix, and shows type errors as a warning${
      hasChromium ? "" : ` (skipped: no ${CHROMIUM})`
    }`,
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const project = makeProject({
      workers: {},
      deploymentYaml:
        "deployment:\n  dev:\n    file_watcher:\n      debounce_ms: 30\n",
    });
    const main = writeSource(project, "p", "main.ts", pageWorker('"page v1"'));
    const server = await startServer(project, ["--mode", "dev"]);
    const browser = await launchChromium();
    const context = browser.context;
    try {
      const page = context.pages()[0] ?? await context.newPage();
      await page.goto(`${server.base}/p`);
      assert.equal(await page.title(), "page v1");

      // A reload whose new instance throws at start: the old page stays, the overlay explains.
      writeSource(
        project,
        "p",
        "boom.ts",
        'export function boom(): void {\n  throw new Error("kaboom in the browser");\n}\n',
      );
      Deno.writeTextFileSync(
        main,
        pageWorker('"page v2"', 'import { boom } from "./boom.ts";\nboom();'),
      );
      const overlay = page.locator("#__tq_overlay");
      await overlay.waitFor({ state: "visible", timeout: 15_000 });
      const text = await overlay.innerText();
      assert.match(text, /Worker crashed: p/);
      assert.match(text, /kaboom in the browser/);
      assert.match(text, /workers\/p\/src\/boom\.ts:2/);
      const box = await overlay.boundingBox();
      assert.ok(box && box.width > 600, "a crash covers the page");

      // Fixed: the new version serves, the page reloads and the overlay is gone.
      Deno.writeTextFileSync(main, pageWorker('"page v3"'));
      await page.waitForFunction(`document.title === "page v3"`, undefined, {
        timeout: 15_000,
      });
      await waitFor(
        async () => (await page.locator("#__tq_overlay").count()) === 0,
        5000,
        "the overlay gone",
      );

      // A type error: the page reloads with the new build, and a warning sits in a corner.
      Deno.writeTextFileSync(
        main,
        pageWorker("n", 'const n: number = "page v4";'),
      );
      await page.waitForFunction(`document.title === "page v4"`, undefined, {
        timeout: 15_000,
      });
      await overlay.waitFor({ state: "visible", timeout: 30_000 });
      assert.match(await overlay.innerText(), /Type errors: p/);
      assert.match(await overlay.innerText(), /TS2322/);
      const corner = await overlay.boundingBox();
      assert.ok(
        corner && corner.width < 800 && corner.y > 0,
        "a warning leaves the page usable",
      );
    } finally {
      await browser.close();
      await server.stop();
      project.cleanup();
    }
  },
});
