// Address ranges (CIDR), shared by the config check and the proxy for
// `server.trusted_proxies`.

/** An address range: the address bytes (4 or 16) and how many leading bits must match. */
interface Cidr {
  bytes: Uint8Array;
  bits: number;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    out[i] = Number(part);
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-f]{1,4}$/i.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** The bytes of an IPv4 or IPv6 address (an IPv4-mapped IPv6 one as IPv4), or undefined. */
function parseIp(text: string): Uint8Array | undefined {
  const bytes = text.includes(":") ? parseIpv6(text) : parseIpv4(text);
  if (
    bytes?.length === 16 && bytes.slice(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff && bytes[11] === 0xff
  ) {
    return bytes.slice(12);
  }
  return bytes;
}

/** Parses `1.2.3.0/24`, `::1/128` or a bare address (a range of one). */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const bytes = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  if (slash < 0) return { bytes, bits: max };
  const len = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(len) || Number(len) > max) return undefined;
  return { bytes, bits: Number(len) };
}

/** Returns what a trusted proxy entry must look like, or undefined when `value` is one. */
export function checkCidr(value: string): string | undefined {
  return parseCidr(value.trim())
    ? undefined
    : `an address or CIDR range, e.g. "10.0.0.0/8", "192.0.2.7" or "::1/128"`;
}

function contains(range: Cidr, ip: Uint8Array): boolean {
  if (range.bytes.length !== ip.length) return false;
  let bits = range.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((range.bytes[i]! & mask) !== (ip[i]! & mask)) return false;
  }
  return true;
}

/**
 * A test for "is this peer address inside one of `cidrs`". Entries that do
 * not parse are ignored (the config validates them before they get here).
 */
export function cidrMatcher(cidrs: readonly string[]): (ip: string) => boolean {
  const ranges = cidrs.map((c) => parseCidr(c.trim())).filter((r) =>
    r !== undefined
  );
  const cache = new Map<string, boolean>();
  return (ip) => {
    let hit = cache.get(ip);
    if (hit === undefined) {
      const bytes = parseIp(ip);
      hit = bytes !== undefined && ranges.some((r) => contains(r, bytes));
      if (cache.size > 4096) cache.clear();
      cache.set(ip, hit);
    }
    return hit;
  };
}
