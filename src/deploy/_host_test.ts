import assert from "node:assert/strict";
import { join } from "node:path";
import { Host, shellQuote, splitOptions } from "./_host.ts";

Deno.test("splitOptions() splits ssh_options like a shell: quotes group, backslashes escape", () => {
  assert.deepEqual(splitOptions(""), []);
  assert.deepEqual(splitOptions("  -p 2222   -i ~/.ssh/k "), [
    "-p",
    "2222",
    "-i",
    "~/.ssh/k",
  ]);
  assert.deepEqual(
    splitOptions(`-i "/keys/my key" -o 'ProxyJump=a b' x\\ y ""`),
    ["-i", "/keys/my key", "-o", "ProxyJump=a b", "x y", ""],
  );
  assert.throws(() => splitOptions(`-i "open`), RangeError);
});

Deno.test("Host.sh() runs in a project root whose path has spaces and quotes, and reports the script's own error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tq-host-" });
  try {
    const path = join(dir, `it's a "tq"`);
    const host = new Host("", path);
    assert.equal(host.label, path);
    assert.equal(
      (await host.sh(`pwd; printf '%s\\n' ${shellQuote("a'b c")}`, {
        create: true,
      })).trim(),
      `${path}\na'b c`,
    );
    const fresh = await new Host("", join(dir, "missing")).sh("echo here", {
      ifExists: true,
    });
    assert.equal(
      fresh.trim(),
      "fresh=1\nhere",
      "the script runs in the login directory",
    );
    await assert.rejects(
      () => host.sh("echo nope >&2; exit 3"),
      /failed \(exit 3\): nope/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Host.address is the login without its user, for {host} in admin_url", () => {
  assert.equal(
    new Host("deploy@web1.example.com", "/srv").address,
    "web1.example.com",
  );
  assert.equal(new Host("127.0.0.2", "/srv").address, "127.0.0.2");
});
