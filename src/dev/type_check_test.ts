import assert from "node:assert/strict";
import { parseTypeErrors } from "./type_check.ts";

Deno.test("parseTypeErrors() takes the first error, its code frame, location and count", () => {
  const output = [
    "TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.",
    'const n: number = "x";',
    "      ^",
    "    at file:///srv/app/workers/a/src/main%20x.ts:3:7",
    "",
    "TS2304 [ERROR]: Cannot find name 'y'.",
    "y;",
    "^",
    "    at file:///srv/app/workers/a/src/main%20x.ts:4:1",
    "",
    "Found 2 errors.",
    "",
    "error: Type checking failed.",
  ].join("\n");
  assert.deepEqual(parseTypeErrors(output), {
    message: "TS2322: Type 'string' is not assignable to type 'number'.\n\n" +
      'const n: number = "x";\n      ^\n\n(1 more type error)',
    count: 2,
    file: "/srv/app/workers/a/src/main x.ts",
    line: 3,
    column: 7,
  });
});

Deno.test("parseTypeErrors() finds nothing in output without a type error", () => {
  assert.equal(parseTypeErrors("error: Module not found\n"), undefined);
  assert.equal(parseTypeErrors(""), undefined);
});
