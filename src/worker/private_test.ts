import assert from "node:assert/strict";
import { join } from "node:path";
import { clearPrivateCache, readPrivate, readPrivateYaml } from "./private.ts";

async function withBase(fn: (base: string) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "tq_private_" });
  try {
    await Deno.mkdir(join(base, "private", "config"), { recursive: true });
    await Deno.writeTextFile(join(base, "secret.txt"), "top secret");
    await fn(base);
  } finally {
    clearPrivateCache();
    await Deno.remove(base, { recursive: true });
  }
}

Deno.test("readPrivate() reads files under private/ only", async (t) => {
  await withBase(async (base) => {
    await Deno.writeTextFile(join(base, "private", "config", "a.txt"), "alpha");

    await t.step("a relative path inside private/ is read", async () => {
      assert.equal(await readPrivate("config/a.txt", { base }), "alpha");
      assert.equal(
        await readPrivate("./config/../config/a.txt", { base }),
        "alpha",
      );
    });

    await t.step("a path that climbs out is a TypeError", async () => {
      for (const bad of ["../secret.txt", "config/../../secret.txt", ".."]) {
        await assert.rejects(readPrivate(bad, { base }), TypeError, bad);
      }
    });

    await t.step("an absolute path is a TypeError", async () => {
      await assert.rejects(readPrivate("/etc/passwd", { base }), TypeError);
      await assert.rejects(
        readPrivate(join(base, "secret.txt"), { base }),
        TypeError,
      );
    });

    await t.step(
      "NUL, backslashes and empty paths are TypeErrors",
      async () => {
        for (const bad of ["a\0b", "..\\secret.txt", ""]) {
          await assert.rejects(readPrivate(bad, { base }), TypeError);
        }
      },
    );

    await t.step(
      "a symlink that leads out of private/ is a TypeError",
      async () => {
        await Deno.symlink(
          join(base, "secret.txt"),
          join(base, "private", "out.txt"),
        );
        await Deno.symlink(base, join(base, "private", "up"));
        await assert.rejects(readPrivate("out.txt", { base }), TypeError);
        await assert.rejects(readPrivate("up/secret.txt", { base }), TypeError);
      },
    );

    await t.step(
      "a symlink that stays inside private/ is followed",
      async () => {
        await Deno.symlink("config/a.txt", join(base, "private", "in.txt"));
        assert.equal(await readPrivate("in.txt", { base }), "alpha");
      },
    );

    await t.step("a missing file is NotFound", async () => {
      await assert.rejects(
        readPrivate("nope.txt", { base }),
        Deno.errors.NotFound,
      );
    });

    await t.step("a directory is a TypeError", async () => {
      await assert.rejects(readPrivate("config", { base }), TypeError);
    });
  });
});

Deno.test("readPrivate() serves from cache until the mtime changes", async () => {
  await withBase(async (base) => {
    const file = join(base, "private", "m.txt");
    await Deno.writeTextFile(file, "one");
    const { mtime } = await Deno.stat(file);
    assert.equal(await readPrivate("m.txt", { base }), "one");

    await Deno.writeTextFile(file, "two");
    await Deno.utime(file, mtime!, mtime!);
    assert.equal(
      await readPrivate("m.txt", { base }),
      "one",
      "cached while mtime and size match",
    );

    const later = new Date(mtime!.getTime() + 2000);
    await Deno.utime(file, later, later);
    assert.equal(
      await readPrivate("m.txt", { base }),
      "two",
      "read again after an mtime change",
    );

    await Deno.writeTextFile(file, "six");
    await Deno.utime(file, later, later);
    clearPrivateCache();
    assert.equal(
      await readPrivate("m.txt", { base }),
      "six",
      "read again after clearPrivateCache()",
    );
  });
});

Deno.test("readPrivateYaml() parses YAML and names the file on a syntax error", async () => {
  await withBase(async (base) => {
    await Deno.writeTextFile(
      join(base, "private", "config", "v.yaml"),
      "fields:\n  name: { required: true }\n",
    );
    await Deno.writeTextFile(
      join(base, "private", "config", "bad.yaml"),
      "a: [1,\n",
    );
    assert.deepEqual(await readPrivateYaml("config/v.yaml", { base }), {
      fields: { name: { required: true } },
    });
    await assert.rejects(
      readPrivateYaml("config/bad.yaml", { base }),
      (err: unknown) =>
        err instanceof SyntaxError && err.message.includes('"config/bad.yaml"'),
    );
  });
});
