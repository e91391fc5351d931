// Static files in a real headless Chromium: a page, its stylesheet and its script come
// from tqserver's cache compressed with br, and the browser decodes and applies them
// (nosniff holds them to their Content-Type).
import assert from "node:assert/strict";
import { CHROMIUM, hasChromium, launchChromium } from "./_browser.ts";
import { join } from "node:path";
import { makeProject, startServer } from "./_helpers.ts";

const CSS = "#probe { color: rgb(1, 2, 3); }\n" +
  "/* padding so the file is worth compressing */\n".repeat(60);
const JS = 'document.getElementById("probe").textContent = "script ran";\n' +
  "// padding so the file is worth compressing\n".repeat(60);
const HTML = `<!doctype html><html><head><title>static page</title>
<link rel="stylesheet" href="../app.css"></head>
<body><p id="probe">no script</p><script src="../app.js"></script>
${
  "<!-- padding so the page is worth compressing -->\n".repeat(40)
}</body></html>
`;

Deno.test({
  name:
    `Chromium gets br from the static cache and applies the stylesheet and script${
      hasChromium ? "" : ` (skipped: no ${CHROMIUM})`
    }`,
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const project = makeProject();
    const pub = join(project.root, "workers", "index", "public");
    Deno.mkdirSync(join(pub, "page"));
    Deno.writeTextFileSync(join(pub, "page", "index.html"), HTML);
    Deno.writeTextFileSync(join(pub, "app.css"), CSS);
    Deno.writeTextFileSync(join(pub, "app.js"), JS);
    const server = await startServer(project);
    const browser = await launchChromium();
    const context = browser.context;
    try {
      const page = context.pages()[0] ?? await context.newPage();
      const encodings = new Map<string, string | undefined>();
      page.on("response", async (res) => {
        const headers = await res.allHeaders();
        encodings.set(new URL(res.url()).pathname, headers["content-encoding"]);
      });
      await page.goto(`${server.base}/static/index/page/`, {
        waitUntil: "load",
      });
      assert.equal(await page.title(), "static page");
      assert.equal(await page.textContent("#probe"), "script ran");
      // A string, evaluated in the page: this file is type-checked without the DOM lib.
      const color = await page.evaluate(
        'getComputedStyle(document.getElementById("probe")).color',
      );
      assert.equal(color, "rgb(1, 2, 3)");
      for (const path of ["page/", "app.css", "app.js"]) {
        assert.equal(encodings.get(`/static/index/${path}`), "br", path);
      }
    } finally {
      await browser.close();
      await server.stop();
      project.cleanup();
    }
  },
});
