import assert from "node:assert/strict";
import { join } from "node:path";
import { readPrivateYaml } from "../../../src/worker/mod.ts";
import { checkRules, validate } from "./validate.ts";

const BASE = join(import.meta.dirname!, "..");
const rules = checkRules(
  await readPrivateYaml("config/validation.yaml", { base: BASE }),
);

function fieldsOf(input: unknown): Record<string, string> {
  const result = validate(input, rules);
  return result.ok
    ? {}
    : Object.fromEntries(result.errors.map((e) => [e.field, e.message]));
}

Deno.test("validate() accepts a good user and drops unknown fields", () => {
  assert.deepEqual(
    validate({
      name: "Grace",
      email: "grace@example.com",
      age: 85,
      admin: true,
    }, rules),
    { ok: true, value: { name: "Grace", email: "grace@example.com", age: 85 } },
  );
  assert.deepEqual(
    validate({ name: "G", email: "g@example.org", age: null }, rules),
    { ok: true, value: { name: "G", email: "g@example.org" } },
  );
});

Deno.test("validate() reports every bad field of validation.yaml at once", async (t) => {
  await t.step("name and email are required", () => {
    assert.deepEqual(fieldsOf({}), {
      name: "is required",
      email: "is required",
    });
  });
  await t.step("name is a string of 1 to 100 characters", () => {
    assert.equal(
      fieldsOf({ name: "", email: "a@b.co" }).name,
      "must not be empty",
    );
    assert.equal(
      fieldsOf({ name: "x".repeat(101), email: "a@b.co" }).name,
      "must be at most 100 characters",
    );
    assert.equal(
      fieldsOf({ name: 7, email: "a@b.co" }).name,
      "must be a string",
    );
    assert.deepEqual(fieldsOf({ name: "x".repeat(100), email: "a@b.co" }), {});
  });
  await t.step("email must match the pattern", () => {
    for (const bad of ["nope", "a@b", "a b@c.d", "@c.d"]) {
      assert.match(
        fieldsOf({ name: "A", email: bad }).email ?? "",
        /email address/,
        bad,
      );
    }
  });
  await t.step("age is an optional integer from 0 to 150", () => {
    assert.equal(
      fieldsOf({ name: "A", email: "a@b.co", age: -1 }).age,
      "must be at least 0",
    );
    assert.equal(
      fieldsOf({ name: "A", email: "a@b.co", age: 151 }).age,
      "must be at most 150",
    );
    assert.equal(
      fieldsOf({ name: "A", email: "a@b.co", age: 3.5 }).age,
      "must be an integer",
    );
    assert.equal(
      fieldsOf({ name: "A", email: "a@b.co", age: "3" }).age,
      "must be an integer",
    );
    assert.deepEqual(fieldsOf({ name: "A", email: "a@b.co", age: 0 }), {});
    assert.deepEqual(fieldsOf({ name: "A", email: "a@b.co", age: 150 }), {});
  });
  await t.step("a body that is not an object", () => {
    for (const bad of [null, [], "x", 3]) {
      assert.deepEqual(fieldsOf(bad), { body: "must be a JSON object" });
    }
  });
});

Deno.test("checkRules() rejects a malformed rules file", () => {
  assert.throws(() => checkRules({}), TypeError);
  assert.throws(() => checkRules({ fields: { a: { type: "date" } } }), /"a"/);
  assert.throws(
    () => checkRules({ fields: { a: { type: "string", pattern: "(" } } }),
    /bad pattern/,
  );
});
