import assert from "node:assert/strict";
import { join } from "node:path";
import { readPrivateYaml } from "../../../src/worker/mod.ts";
import { createApp } from "./app.ts";
import { checkRules } from "./validate.ts";

const BASE = join(import.meta.dirname!, "..");
const rules = checkRules(
  await readPrivateYaml("config/validation.yaml", { base: BASE }),
);

function json(method: string, body: unknown): RequestInit {
  return {
    method,
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

Deno.test("the users API does CRUD with validation and 404s", async (t) => {
  const app = createApp({ rules: () => Promise.resolve(rules) });

  await t.step("lists the two seed users", async () => {
    const res = await app.request("/");
    assert.equal(res.status, 200);
    const users = await res.json();
    assert.deepEqual(users.map((u: { id: number }) => u.id), [1, 2]);
  });

  await t.step("creates a user with 201 and a Location", async () => {
    const res = await app.request(
      "/",
      json("POST", { name: "Grace", email: "grace@example.com" }),
    );
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("location"), "/api/users/3");
    assert.deepEqual(await res.json(), {
      id: 3,
      name: "Grace",
      email: "grace@example.com",
    });
  });

  await t.step("rejects bad input with 400 and every field error", async () => {
    const res = await app.request("/", json("POST", { name: "", age: 200 }));
    assert.equal(res.status, 400);
    const { errors } = await res.json();
    assert.deepEqual(errors.map((e: { field: string }) => e.field), [
      "name",
      "email",
      "age",
    ]);
    const broken = await app.request("/", json("POST", "{not json"));
    assert.equal(broken.status, 400);
    assert.deepEqual((await broken.json()).errors, [{
      field: "body",
      message: "must be valid JSON",
    }]);
  });

  await t.step("reads, replaces and deletes by id", async () => {
    assert.equal((await (await app.request("/3")).json()).name, "Grace");
    const put = await app.request(
      "/3",
      json("PUT", { name: "Grace Hopper", email: "gh@example.com", age: 85 }),
    );
    assert.equal(put.status, 200);
    assert.deepEqual(await put.json(), {
      id: 3,
      name: "Grace Hopper",
      email: "gh@example.com",
      age: 85,
    });
    const bad = await app.request("/3", json("PUT", { name: "Grace" }));
    assert.equal(bad.status, 400);
    assert.equal((await app.request("/3", { method: "DELETE" })).status, 204);
    assert.equal((await app.request("/3")).status, 404);
  });

  await t.step("unknown ids are 404 for every method", async () => {
    for (
      const [path, init] of [
        ["/99", {}],
        ["/abc", {}],
        ["/99", json("PUT", { name: "A", email: "a@b.co" })],
        ["/99", { method: "DELETE" }],
      ] as const
    ) {
      const res = await app.request(path, init);
      assert.equal(res.status, 404, `${init.method ?? "GET"} ${path}`);
      assert.match((await res.json()).error, /not found/i);
    }
  });
});
