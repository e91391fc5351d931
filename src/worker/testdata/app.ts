// A worker used by worker_test.ts: run as a real process with TQ_* set.
import { Hono } from "hono";
import { originalUrl, readPrivate, render, serve } from "../mod.ts";

let reloads = 0;
const app = new Hono();

app.get("/", (c) => c.text("root"));
app.get("/x", (c) => {
  const url = new URL(c.req.url);
  return c.json({
    path: url.pathname,
    search: url.search,
    original: originalUrl(c.req.raw),
    prefix: c.req.header("x-forwarded-prefix") ?? null,
  });
});
// Sends headers at once, then the body after `ms`: the test knows the request is in flight.
app.get("/slow", (c) => {
  const ms = Number(c.req.query("ms") ?? "500");
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(new TextEncoder().encode("started "));
      await new Promise((resolve) => setTimeout(resolve, ms));
      controller.enqueue(new TextEncoder().encode("finished"));
      controller.close();
    },
  });
  return c.body(body, 200, { "content-type": "text/plain" });
});
app.get("/read", async (c) => {
  try {
    return c.text(await readPrivate(c.req.query("f") ?? ""));
  } catch (err) {
    const e = err as Error;
    return c.json({ error: e.name, message: e.message }, 400);
  }
});
app.get(
  "/render",
  async (c) =>
    c.html(await render("page", { name: c.req.query("name") ?? "" })),
);
app.get("/reloads", (c) => c.text(String(reloads)));

serve(app, {
  onReload: () => {
    reloads++;
  },
});
