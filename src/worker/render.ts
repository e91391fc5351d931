import { Eta } from "eta";
import { workerBase } from "./env.ts";
import { readPrivate } from "./private.ts";

/** Options for {@linkcode render}. */
export interface RenderOptions {
  /** Layout in `private/templates/{layout}.html`, or `false` for none. Default `"base"`. */
  layout?: string | false;
  /** The worker folder. Default: `TQ_WORKER_BASE`, else the working directory. */
  base?: string;
}

type Template = ReturnType<Eta["compile"]>;

/*
 * Why Eta rather than Hono's `html` helper: views live in `private/` as
 * files, so an edit reaches a running worker with a reload signal instead of
 * a rebuild, which needs templates compiled at run time; `html` templates are
 * tagged literals compiled into the bundle. Eta escapes `<%= %>` by default,
 * has no dependencies, and compiles a template once into a function that we
 * cache next to the text it came from.
 */
const eta = new Eta({ autoEscape: true, cache: false, useWith: false });
const compiled = new Map<string, { text: string; fn: Template }>();

/** Forgets compiled views and layouts (the SDK calls it on the reload signal). */
export function clearViewCache(): void {
  compiled.clear();
}

function checkName(kind: string, name: string): void {
  if (!/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/.test(name)) {
    throw new TypeError(
      `${kind} name must be letters, digits, "_", "-" and "/", got "${name}"`,
    );
  }
}

async function load(relPath: string, base: string): Promise<Template> {
  // readPrivate hands back the same string while the file is unchanged, so
  // comparing texts is a cheap freshness check for the compiled function.
  const text = await readPrivate(relPath, { base });
  const key = `${base}\0${relPath}`;
  const hit = compiled.get(key);
  if (hit && hit.text === text) return hit.fn;
  let fn: Template;
  try {
    fn = eta.compile(text);
  } catch (err) {
    throw new SyntaxError(
      `Template "private/${relPath}" does not compile: ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  }
  compiled.set(key, { text, fn });
  return fn;
}

/**
 * Renders `private/views/{view}.html` with `data` (as `it`), then places the
 * result into the layout `private/templates/{layout}.html` as `it.body`, with
 * the same data beside it. `<%= %>` escapes HTML; `<%~ %>` writes raw (use it
 * for `it.body` in a layout). Files are read through the confined private
 * reader and compiled once per change.
 *
 * @param view View name without extension, such as `"home"` or `"users/list"`.
 * @param data Values for the view and the layout.
 * @throws {TypeError} When a name is not a plain template name.
 * @throws {Deno.errors.NotFound} When the view or layout is missing.
 * @throws {SyntaxError} When a template does not compile.
 *
 * @example
 * ```ts
 * app.get("/", async (c) => c.html(await render("home", { title: "Home" })));
 * ```
 */
export async function render(
  view: string,
  data: Record<string, unknown> = {},
  options: RenderOptions = {},
): Promise<string> {
  const { layout = "base", base = workerBase() } = options;
  checkName("View", view);
  const viewFn = await load(`views/${view}.html`, base);
  const body = eta.render(viewFn, data);
  if (layout === false) return body;
  checkName("Layout", layout);
  const layoutFn = await load(`templates/${layout}.html`, base);
  return eta.render(layoutFn, { ...data, body });
}
