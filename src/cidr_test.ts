import assert from "node:assert/strict";
import { checkCidr, cidrMatcher, parseCidr } from "./cidr.ts";

Deno.test("cidrMatcher() matches IPv4 and IPv6 ranges, bare addresses and IPv4-mapped peers", () => {
  const trusted = cidrMatcher(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]);
  assert.equal(trusted("10.200.3.4"), true);
  assert.equal(trusted("11.0.0.1"), false);
  assert.equal(trusted("192.0.2.7"), true);
  assert.equal(trusted("192.0.2.8"), false);
  assert.equal(trusted("2001:db8:1::5"), true);
  assert.equal(trusted("2001:db9::5"), false);
  assert.equal(trusted("::ffff:10.1.1.1"), true, "IPv4-mapped IPv6");
  assert.equal(trusted("not an ip"), false);
});

Deno.test("cidrMatcher() with the loopback default trusts all of 127.0.0.0/8 and ::1 only", () => {
  const loopback = cidrMatcher(["127.0.0.0/8", "::1/128"]);
  assert.equal(loopback("127.0.0.1"), true);
  assert.equal(loopback("127.0.0.9"), true);
  assert.equal(loopback("::1"), true);
  assert.equal(loopback("::2"), false);
  assert.equal(loopback("128.0.0.1"), false);
});

Deno.test("checkCidr() says what a trusted proxy entry must look like", () => {
  assert.equal(checkCidr("10.0.0.0/8"), undefined);
  assert.equal(checkCidr("fe80::1%eth0"), undefined);
  assert.match(checkCidr("10.0.0.0/33") ?? "", /CIDR range/);
  assert.match(checkCidr("example.com") ?? "", /CIDR range/);
  assert.equal(parseCidr("1.2.3.4/0")?.bits, 0);
  assert.equal(parseCidr("::/0")?.bytes.length, 16);
  assert.equal(parseCidr("1::2::3"), undefined);
});
