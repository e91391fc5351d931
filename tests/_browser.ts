// Headless Chromium for browser tests and the dev benchmark: Debian's
// chromium driven by playwright-core, with the flags this machine needs
// (no sandbox as root, no background networking on a closed network).
import type { BrowserContext } from "playwright-core";

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM = "/usr/bin/chromium";

/** True when {@linkcode CHROMIUM} is installed. */
export const hasChromium: boolean = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A browser on a fresh profile; `close()` also removes the profile. */
export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Starts headless Chromium on a new, empty profile.
 *
 * @param viewport The page size. Default: playwright's (1280 × 720).
 */
export async function launchChromium(
  viewport?: { width: number; height: number },
): Promise<Chromium> {
  const { chromium } = await import("playwright-core");
  const profile = Deno.makeTempDirSync({ prefix: "tq-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    ...(viewport ? { viewport } : {}),
  });
  return {
    context,
    close: async () => {
      await context.close();
      Deno.removeSync(profile, { recursive: true });
    },
  };
}
