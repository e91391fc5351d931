import assert from "node:assert/strict";
import { compileRuntimeError, parseBuildError } from "./_errors.ts";

const SYNTAX =
  "\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: SyntaxError: Expected a semicolon\n" +
  "  |\n2 | let y = 2 x;\n  |           ~\n" +
  "    at file:///srv/my%20app/workers/a/src/bad.ts:2:11\n" +
  "\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: bundling failed\n\nStack backtrace:\n   0: <unknown>\n";

const OFFLINE =
  "error: Writing deno compile executable to temporary file 'bin/.a.tmp-1.tmp-2'\n\n" +
  "Caused by:\n    0: Setting up base binary.\n" +
  "    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error (Connect): dns error\n" +
  "    2: client error (Connect)\n\nStack backtrace:\n   0: <unknown>\n";

Deno.test("parseBuildError() locates a syntax error and drops colours and backtraces", () => {
  const error = parseBuildError(SYNTAX);
  assert.equal(error.file, "/srv/my app/workers/a/src/bad.ts");
  assert.equal(error.line, 2);
  assert.equal(error.column, 11);
  assert.equal(
    error.message,
    "SyntaxError: Expected a semicolon\n  |\n2 | let y = 2 x;\n  |           ~",
  );
});

Deno.test("parseBuildError() keeps a message that has no location", () => {
  assert.deepEqual(
    parseBuildError('error: Relative import path "x" not prefixed\n'),
    {
      message: 'Relative import path "x" not prefixed',
    },
  );
  assert.match(parseBuildError("").message, /without a message/);
});

Deno.test("compileRuntimeError() explains a failed runtime download and ignores other errors", () => {
  const error = compileRuntimeError(OFFLINE);
  assert.match(error?.message ?? "", /could not get its runtime \(denort\)/);
  assert.match(error?.message ?? "", /DENORT_BIN=\/path\/to\/denort/);
  assert.match(error?.message ?? "", /cause: error sending request for url/);
  assert.match(
    compileRuntimeError("error: Could not find denort at '/x/denort'\n")
      ?.message ?? "",
    /^DENORT_BIN "\/x\/denort" does not exist/,
  );
  assert.equal(compileRuntimeError(SYNTAX), undefined);
});
