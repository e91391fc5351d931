import assert from "node:assert/strict";
import { join } from "node:path";
import { clearPrivateCache } from "./private.ts";
import { clearViewCache, render } from "./render.ts";

async function withViews(fn: (base: string) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "tq_render_" });
  try {
    await Deno.mkdir(join(base, "private", "views", "users"), {
      recursive: true,
    });
    await Deno.mkdir(join(base, "private", "templates"), { recursive: true });
    await Deno.writeTextFile(
      join(base, "private", "views", "hello.html"),
      "<p><%= it.name %></p>",
    );
    await Deno.writeTextFile(
      join(base, "private", "views", "users", "list.html"),
      "<ul><% it.users.forEach((u) => { %><li><%= u %></li><% }) %></ul>",
    );
    await Deno.writeTextFile(
      join(base, "private", "templates", "base.html"),
      "<title><%= it.title %></title><%~ it.body %></body>",
    );
    await Deno.writeTextFile(
      join(base, "private", "templates", "plain.html"),
      "[<%~ it.body %>]",
    );
    await fn(base);
  } finally {
    clearPrivateCache();
    clearViewCache();
    await Deno.remove(base, { recursive: true });
  }
}

Deno.test("render() escapes data and wraps the view in the layout", async (t) => {
  await withViews(async (base) => {
    await t.step("the default layout is base", async () => {
      assert.equal(
        await render("hello", { name: `<b>"x" & 'y'</b>`, title: "<T>" }, {
          base,
        }),
        "<title>&lt;T&gt;</title><p>&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;</p></body>",
      );
    });

    await t.step("a named layout, or none", async () => {
      assert.equal(
        await render("hello", { name: "a" }, { base, layout: "plain" }),
        "[<p>a</p>]",
      );
      assert.equal(
        await render("hello", { name: "a" }, { base, layout: false }),
        "<p>a</p>",
      );
    });

    await t.step("views in subfolders", async () => {
      assert.equal(
        await render("users/list", { users: ["<a>", "b"] }, {
          base,
          layout: false,
        }),
        "<ul><li>&lt;a&gt;</li><li>b</li></ul>",
      );
    });

    await t.step(
      "names that could leave the folder are TypeErrors",
      async () => {
        await assert.rejects(
          render("../templates/base", {}, { base }),
          TypeError,
        );
        await assert.rejects(
          render("hello", {}, { base, layout: "../views/hello" }),
          TypeError,
        );
      },
    );

    await t.step("a missing view is NotFound", async () => {
      await assert.rejects(render("nope", {}, { base }), Deno.errors.NotFound);
    });

    await t.step("an edited view is compiled again", async () => {
      const file = join(base, "private", "views", "hello.html");
      const later = new Date(Date.now() + 5000);
      await Deno.writeTextFile(file, "<em><%= it.name %></em>");
      await Deno.utime(file, later, later);
      assert.equal(
        await render("hello", { name: "z" }, { base, layout: false }),
        "<em>z</em>",
      );
    });
  });
});
