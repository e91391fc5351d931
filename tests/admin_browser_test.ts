// The dashboard in a real headless Chromium: it lists the workers, shows a
// restart in its timeline within a second, and answers buttons with sentences.
// Set TQ_SCREENSHOTS=DIR to save screenshots at 1280 px and phone width there.
import assert from "node:assert/strict";
import { CHROMIUM, hasChromium, launchChromium } from "./_browser.ts";
import { join } from "node:path";
import { makeProject, REPO, startServer } from "./_helpers.ts";

if (!hasChromium) {
  console.log(
    `skip: ${CHROMIUM} is not installed; the dashboard browser test does not run`,
  );
}

/** "45.3 MiB" → bytes. */
function parseBytes(text: string): number {
  const m = /^([\d.]+) (B|KiB|MiB|GiB)$/.exec(text.trim());
  assert.ok(m, `not a size: "${text}"`);
  const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[
    m[2] as "B" | "KiB" | "MiB" | "GiB"
  ];
  return Number(m[1]) * unit;
}

function launch() {
  return launchChromium({ width: 1280, height: 800 });
}

Deno.test({
  name:
    `the dashboard lists the workers and shows a restart in its timeline within a second${
      hasChromium ? "" : ` (skipped: no ${CHROMIUM})`
    }`,
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const project = makeProject({ workers: { index: {}, api: {} } });
    const admin = join(project.root, "server", "public", "admin");
    Deno.mkdirSync(admin, { recursive: true });
    for (
      const { name: file } of Deno.readDirSync(
        join(REPO, "server", "public", "admin"),
      )
    ) {
      Deno.copyFileSync(
        join(REPO, "server", "public", "admin", file),
        join(admin, file),
      );
    }
    const server = await startServer(project);
    const browser = await launch();
    const shots = Deno.env.get("TQ_SCREENSHOTS");
    try {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(String(err)));
      page.on("console", (msg) => {
        if (msg.type() === "error") errors.push(msg.text());
      });
      await page.goto(server.admin);

      await t.step(
        "every worker is listed with its state, instance and a live stream",
        async () => {
          await page.waitForSelector('#live:text("live")', { timeout: 10_000 });
          for (const name of ["api", "index"]) {
            const row = page.locator(`tr[data-worker="${name}"]`);
            await row.locator('.pill:text("healthy")').waitFor({
              timeout: 5000,
            });
            const pid = (await server.status()).workers.find((w) =>
              w.name === name
            )!.pid;
            assert.match(
              await row.locator("td").nth(2).innerText(),
              new RegExp(`pid ${pid} :\\d+`),
            );
          }
          await page.locator('#events li[data-type="start"]').first().waitFor({
            timeout: 5000,
          });
        },
      );

      await t.step(
        "a restart shows in the timeline within a second",
        async () => {
          for (let i = 0; i < 5; i++) {
            await (await fetch(`${server.base}/api/x`)).body?.cancel();
          }
          const res = await fetch(`${server.admin}/api/workers/api/restart`, {
            method: "POST",
            headers: { "content-type": "application/json" },
          });
          assert.equal(res.status, 200);
          await res.body?.cancel();
          const done = performance.now();
          await page.locator('#events li[data-type="replace"]', {
            hasText: "api replaced (manual)",
          })
            .waitFor({ timeout: 1000 });
          assert.ok(performance.now() - done < 1000);
        },
      );

      await t.step(
        "the memory, CPU and answer cells show what /api/status says",
        async () => {
          for (const status of [500, 500, 503, 404, 404]) {
            await (await fetch(`${server.base}/api/x?status=${status}`)).body
              ?.cancel();
          }
          const row = page.locator('tr[data-worker="api"]');
          await row.locator(".c5xx", { hasText: /^3 5xx$/ }).waitFor({
            timeout: 5000,
          });
          const api = (await server.status()).workers.find((w) =>
            w.name === "api"
          )!;
          assert.equal(api.responses["5xx"], 3);
          assert.equal(await row.locator(".c5xx").innerText(), "3 5xx");
          assert.equal(
            await row.locator(".c4xx").innerText(),
            `${api.responses["4xx"]} 4xx`,
          );
          assert.ok(api.rss_bytes! > 1024 * 1024, `rss ${api.rss_bytes}`);
          const shown = parseBytes(await row.locator("td").nth(8).innerText());
          assert.ok(
            Math.abs(shown - api.rss_bytes!) / api.rss_bytes! < 0.1,
            `memory cell ${shown} vs rss_bytes ${api.rss_bytes}`,
          );
          await row.locator("td").nth(9).locator("text=/^\\d+%$/").waitFor({
            timeout: 5000,
          });
          const usage = await page.locator("#server-usage").innerText();
          const server5xx = (await server.status()).responses["5xx"];
          assert.match(usage, new RegExp(`\\b${server5xx} 5xx`));
          assert.match(usage, /^server: \d+(\.\d)? MiB · CPU /);
        },
      );

      await t.step("a worker's last output shows on demand", async () => {
        await page.locator('tr[data-worker="api"] button.output').click();
        const pid = (await server.status()).workers.find((w) =>
          w.name === "api"
        )!.pid;
        await page.locator("#output-lines", { hasText: `pid ${pid} :` })
          .waitFor({ timeout: 5000 });
        assert.equal(
          await page.locator("#output-title").innerText(),
          "Last output of api",
        );
        await page.locator("#output-close").click();
        assert.equal(await page.locator("#output").isHidden(), true);
      });

      await t.step(
        "the Restart button asks first, then answers with a sentence",
        async () => {
          const before = (await server.status()).workers.find((w) =>
            w.name === "index"
          )!.pid;
          await page.locator('tr[data-worker="index"] button.restart').click();
          await page.locator('tr[data-worker="index"] button.restart', {
            hasText: "Confirm",
          }).waitFor({ timeout: 2000 });
          await page.locator("#result", { hasText: /^Restart index\? / })
            .waitFor({ timeout: 2000 });
          await page.waitForTimeout(300);
          assert.equal(
            (await server.status()).workers.find((w) => w.name === "index")!
              .pid,
            before,
            "the first click restarted",
          );
          await page.locator('tr[data-worker="index"] button.restart').click();
          await page.locator("#result", {
            hasText: /^Restarted index in \d+ ms: pid \d+ → \d+\.$/,
          })
            .waitFor({ timeout: 10_000 });
          await page.locator("#reload").click();
          await page.locator("#result", {
            hasText: /^Checked 2 workers in \d+ ms: nothing changed\.$/,
          })
            .waitFor({ timeout: 10_000 });
        },
      );

      if (shots) {
        // Let the sparklines show the requests of the step above.
        await page.waitForTimeout(1200);
        await page.screenshot({
          path: join(shots, "admin-1280.png"),
          fullPage: true,
        });
        await page.setViewportSize({ width: 390, height: 844 });
        await page.waitForTimeout(300);
        await page.screenshot({
          path: join(shots, "admin-phone.png"),
          fullPage: true,
        });
        // The output panel open and a Restart asking, at both widths.
        await page.locator('tr[data-worker="api"] button.output').click();
        await page.locator("#output-lines", { hasText: "pid" }).waitFor();
        await page.locator('tr[data-worker="api"] button.restart').click();
        await page.screenshot({
          path: join(shots, "admin-phone-output.png"),
          fullPage: true,
        });
        await page.setViewportSize({ width: 1280, height: 800 });
        await page.screenshot({
          path: join(shots, "admin-1280-output.png"),
          fullPage: true,
        });
        await page.locator('tr[data-worker="api"] button.cancel').click();
        await page.locator("#output-close").click();
      }

      await t.step(
        "with polling instead of the stream, a restart still shows",
        async () => {
          const polled = await browser.context.newPage();
          await polled.goto(`${server.admin}/?poll=1`);
          await polled.waitForSelector('#live:text("polling")', {
            timeout: 10_000,
          });
          const res = await fetch(`${server.admin}/api/workers/index/restart`, {
            method: "POST",
            headers: { "content-type": "application/json" },
          });
          await res.body?.cancel();
          // The poll interval is 2 s.
          await polled.locator('#events li[data-type="replace"]', {
            hasText: "index replaced (manual)",
          })
            .nth(1).waitFor({ timeout: 5000 });
          await polled.close();
        },
      );

      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.stop();
      project.cleanup();
    }
  },
});
