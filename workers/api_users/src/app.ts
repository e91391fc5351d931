import { type Context, Hono } from "hono";
import {
  createLogger,
  type Logger,
  readPrivateYaml,
} from "../../../src/worker/mod.ts";
import { type User, type UserInput, UserStore } from "./store.ts";
import { checkRules, validate, type ValidationRules } from "./validate.ts";

/** Options for {@linkcode createApp}. */
export interface AppOptions {
  /** The store. Default: a new store with the two seed users. */
  store?: UserStore;
  /** Where the rules come from. Default: `private/config/validation.yaml`, re-read when it changes. */
  rules?: () => Promise<ValidationRules>;
  /** The route the app is mounted at, for `Location` headers. Default `"/api/users"`. */
  route?: string;
  /** Where unexpected errors are logged. Default: stderr. */
  logger?: Logger;
}

async function rulesFromPrivate(): Promise<ValidationRules> {
  return checkRules(await readPrivateYaml("config/validation.yaml"));
}

/**
 * The users API: JSON CRUD on an in-memory store, written relative to its
 * route (the SDK hands it `/` for `/api/users` and `/7` for `/api/users/7`).
 */
export function createApp(options: AppOptions = {}): Hono {
  const {
    store = new UserStore(),
    rules = rulesFromPrivate,
    route = "/api/users",
    logger = createLogger(),
  } = options;
  const app = new Hono();

  const notFound = (c: Context, id: string) =>
    c.json({ error: `User "${id}" not found` }, 404);

  function findId(c: Context): number | undefined {
    const text = c.req.param("id") ?? "";
    return /^[1-9]\d{0,9}$/.test(text) ? Number(text) : undefined;
  }

  async function readUser(
    c: Context,
  ): Promise<{ user: UserInput } | { response: Response }> {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return {
        response: c.json({
          errors: [{ field: "body", message: "must be valid JSON" }],
        }, 400),
      };
    }
    const result = validate(body, await rules());
    if (!result.ok) {
      return { response: c.json({ errors: result.errors }, 400) };
    }
    return { user: result.value as unknown as UserInput };
  }

  app.get("/", (c) => c.json(store.list()));

  app.post("/", async (c) => {
    const read = await readUser(c);
    if ("response" in read) return read.response;
    const user = store.create(read.user);
    c.header("location", `${route.replace(/\/$/, "")}/${user.id}`);
    return c.json(user, 201);
  });

  app.get("/:id", (c) => {
    const id = findId(c);
    const user: User | undefined = id === undefined ? undefined : store.get(id);
    return user ? c.json(user) : notFound(c, c.req.param("id"));
  });

  app.put("/:id", async (c) => {
    const id = findId(c);
    if (id === undefined || !store.get(id)) {
      return notFound(c, c.req.param("id"));
    }
    const read = await readUser(c);
    if ("response" in read) return read.response;
    return c.json(store.replace(id, read.user));
  });

  app.delete("/:id", (c) => {
    const id = findId(c);
    if (id === undefined || !store.delete(id)) {
      return notFound(c, c.req.param("id"));
    }
    return c.body(null, 204);
  });

  app.notFound((c) => c.json({ error: "Not found" }, 404));
  app.onError((err, c) => {
    logger.error("request failed", {
      method: c.req.method,
      path: c.req.path,
      error: err.stack ?? err.message,
    });
    return c.json({ error: "Internal server error" }, 500);
  });
  return app;
}
