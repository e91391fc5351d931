import assert from "node:assert/strict";
import { join } from "node:path";
import { ScratchBuffer } from "./_buffers.ts";
import { openFilesUnder, withTree } from "./_testing.ts";

function pattern(size: number, seed: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(size).map((_, i) => (i * seed + (i >> 10)) % 251);
}

Deno.test("ScratchBuffer reads exactly the size asked for, grows once, and says null when the file is shorter", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tq_scratch_" });
  try {
    const path = join(dir, "f.bin");
    const bytes = pattern(300_000, 7);
    await Deno.writeFile(path, bytes);
    const scratch = new ScratchBuffer();
    assert.deepEqual(
      scratch.readWhole(Deno.openSync(path), bytes.length),
      bytes,
    );
    assert.equal(scratch.capacity, bytes.length);
    assert.deepEqual(
      scratch.readWhole(Deno.openSync(path), 1000),
      bytes.subarray(0, 1000),
    );
    assert.equal(scratch.capacity, bytes.length, "no new buffer for less");
    assert.equal(
      scratch.readWhole(Deno.openSync(path), bytes.length + 1),
      null,
      "a file that shrank under us",
    );
    assert.deepEqual(await openFilesUnder(dir), [], "every file closed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("files read whole through one scratch buffer: concurrent answers of two files never mix", async () => {
  await withTree(async ({ pub, handler }) => {
    // Same size, different bytes, many in flight at once over real sockets:
    // an answer that still pointed at the scratch buffer once the next file
    // was read into it would carry the other file's bytes.
    const files = {
      "one.bin": pattern(700_000, 13),
      "two.bin": pattern(700_000, 29),
    };
    for (const [name, bytes] of Object.entries(files)) {
      await Deno.writeFile(join(pub, name), bytes);
    }
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) => handler(req),
    );
    const base = `http://127.0.0.1:${server.addr.port}/static/index`;
    try {
      const names = Object.keys(files) as (keyof typeof files)[];
      for (let round = 0; round < 3; round++) {
        await Promise.all(
          Array.from({ length: 24 }, async (_, i) => {
            const name = names[i % 2]!;
            const res = await fetch(`${base}/${name}`);
            assert.equal(res.status, 200);
            assert.equal(res.headers.get("content-length"), "700000");
            const body = new Uint8Array(await res.arrayBuffer());
            const want = files[name];
            assert.ok(
              body.length === want.length &&
                body.every((b, j) => b === want[j]),
              `${name} arrived intact (round ${round}, request ${i})`,
            );
          }),
        );
      }
      const head = await fetch(`${base}/one.bin`, { method: "HEAD" });
      assert.equal(head.headers.get("content-length"), "700000");
      const range = await fetch(`${base}/two.bin`, {
        headers: { range: "bytes=10-19" },
      });
      assert.equal(range.status, 206);
      assert.deepEqual(
        new Uint8Array(await range.arrayBuffer()),
        files["two.bin"].subarray(10, 20),
      );
    } finally {
      await server.shutdown();
    }
  }, { revalidateMs: 0 });
});

Deno.test("a file read whole is served anew after an rsync-style replace", async () => {
  await withTree(async ({ pub, handler }) => {
    const path = join(pub, "swap.bin");
    const before = pattern(600_000, 3);
    const after = pattern(600_000, 5);
    await Deno.writeFile(path, before);
    const url = "http://localhost/static/index/swap.bin";
    assert.deepEqual(await (await handler(new Request(url))).bytes(), before);
    await Deno.writeFile(join(pub, ".swap.bin.tmp"), after);
    await Deno.rename(join(pub, ".swap.bin.tmp"), path);
    assert.deepEqual(await (await handler(new Request(url))).bytes(), after);
  }, { revalidateMs: 0 });
});
