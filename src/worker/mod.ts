/**
 * The worker SDK: what a TypeScript worker imports to follow the tqserver
 * worker contract (SPEC §4) — environment, `/health` with `X-TQ-Reload`,
 * route-relative paths, graceful stop, stdin watch, confined `private/`
 * reads, and views rendered into a layout.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { render, serve } from "../../../src/worker/mod.ts";
 *
 * const app = new Hono();
 * app.get("/", async (c) => c.html(await render("home", { title: "Home" })));
 * serve(app);
 * ```
 *
 * @module
 */
export * from "./env.ts";
export * from "./private.ts";
export * from "./render.ts";
export * from "./serve.ts";
export { createLogger, type Logger } from "../log/logger.ts";
