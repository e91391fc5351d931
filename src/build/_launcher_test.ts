import assert from "node:assert/strict";
import { launcherHeader, unstableFlags } from "./_launcher.ts";

Deno.test("launcherHeader() writes a #!/usr/bin/env -S line for short plain flags", () => {
  assert.equal(
    launcherHeader(["--allow-net", "--allow-read=/srv/app", "--unstable-net"]),
    "#!/usr/bin/env -S deno run --no-config --allow-net --allow-read=/srv/app --unstable-net\n",
  );
});

Deno.test("launcherHeader() falls back to a quoted /bin/sh launcher for long or unusual flags", () => {
  const header = launcherHeader(["--allow-read=/srv/my app's files"]);
  assert.equal(
    header,
    `#!/bin/sh\n//bin/true; exec deno run --no-config '--allow-read=/srv/my app'\\''s files' "$0" "$@"\n`,
  );
  const long = launcherHeader([`--allow-env=${"A,".repeat(80)}B`]);
  assert.ok(long.startsWith("#!/bin/sh\n"));
});

Deno.test("unstableFlags() reads the unstable list of deno.json and deno.jsonc", () => {
  assert.deepEqual(unstableFlags('{"unstable": ["net", "kv"]}'), [
    "--unstable-net",
    "--unstable-kv",
  ]);
  assert.deepEqual(
    unstableFlags(
      '{\n  // comment with "quotes"\n  "unstable": ["net",], /* x */\n}',
    ),
    ["--unstable-net"],
  );
  assert.deepEqual(unstableFlags('{"imports": {}}'), []);
  assert.deepEqual(unstableFlags("not json"), []);
});
