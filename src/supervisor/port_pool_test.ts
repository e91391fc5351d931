import assert from "node:assert/strict";
import { NoFreePortError, PortPool } from "./port_pool.ts";

Deno.test("PortPool skips a port a foreign process listens on", () => {
  const foreign = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held = (foreign.addr as Deno.NetAddr).port;
  try {
    const pool = new PortPool(held, Math.min(held + 5, 65535));
    const port = pool.acquire();
    assert.notEqual(port, held);
    assert.ok(port > held);
  } finally {
    foreign.close();
  }
});

Deno.test("PortPool never hands out the same port twice while in use", () => {
  const pool = new PortPool(1, 3, { isFree: () => true });
  const ports = [pool.acquire(), pool.acquire(), pool.acquire()];
  assert.equal(new Set(ports).size, 3);
  // A runtime condition, not bad usage: the CLI must not map it to exit code 2.
  assert.throws(() => pool.acquire(), NoFreePortError);
  assert.throws(() => pool.acquire(), (err) => !(err instanceof RangeError));
  pool.release(ports[1]!);
  assert.equal(pool.acquire(), ports[1]);
});

Deno.test("PortPool rotates instead of reusing a just-released port", () => {
  const pool = new PortPool(10, 12, { isFree: () => true });
  const a = pool.acquire();
  pool.release(a);
  assert.notEqual(pool.acquire(), a);
});

Deno.test("PortPool rejects an empty range", () => {
  assert.throws(() => new PortPool(10, 9), RangeError);
});
