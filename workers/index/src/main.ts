// The index worker: the site's pages at /, rendered from private/views into private/templates/base.html.
import { Hono } from "hono";
import { render, serve, workerEnv } from "../../../src/worker/mod.ts";

const env = workerEnv();
const startedAt = new Date().toISOString();
const app = new Hono();

// What every page shows in its footer and the home page's status card.
function site(title: string, path: string) {
  return {
    title,
    path,
    worker: env.name,
    mode: env.mode,
    pid: Deno.pid,
    startedAt,
    deno: Deno.version.deno,
  };
}

app.get("/", async (c) => c.html(await render("home", site("Home", "/"))));

app.get(
  "/about",
  async (c) => c.html(await render("about", site("About", "/about"))),
);

// The index worker holds the route "/", so every path no other worker claims lands here.
app.notFound(async (c) =>
  c.html(
    await render("not_found", {
      ...site("Not found", c.req.path),
      missing: c.req.path,
    }),
    404,
  )
);

serve(app);
