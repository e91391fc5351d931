/**
 * Folder-private: RFC 6455 framing for the worker leg's client
 * (`_ws_client.ts`): opcodes, the frame header, close payloads and masking.
 */

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * True for a code a close frame may carry (RFC 6455 §7.4: 1000–1003,
 * 1007–1014 as registered with IANA, 3000–4999); 1004, 1005, 1006 and 1015
 * are never sent.
 */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/** Bytes read from the worker, consumed from the front. */
export class Inbox {
  #chunks: Uint8Array[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#chunks.push(bytes);
    this.#size += bytes.length;
  }

  /** The first `n` bytes (at most 14: a frame header) without consuming them. */
  peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    for (const chunk of this.#chunks) {
      const take = Math.min(chunk.length, n - at);
      out.set(chunk.subarray(0, take), at);
      at += take;
      if (at === n) break;
    }
    return out;
  }

  /** Consumes the first `n` bytes (n ≤ size). */
  take(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.length, n - at);
      out.set(chunk.subarray(0, take), at);
      at += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#size -= n;
    return out;
  }
}

/** A frame header: its length in bytes, the payload length and the flags. */
export interface FrameHead {
  fin: boolean;
  opcode: number;
  masked: boolean;
  headBytes: number;
  payload: number;
}

/** Parses a frame header from the inbox; undefined until it is whole. */
export function frameHead(inbox: Inbox): FrameHead | undefined {
  if (inbox.size < 2) return undefined;
  const b = inbox.peek(Math.min(inbox.size, 14));
  const fin = (b[0]! & 0x80) !== 0;
  const opcode = b[0]! & 0x0f;
  const masked = (b[1]! & 0x80) !== 0;
  let payload = b[1]! & 0x7f;
  let headBytes = 2;
  if (payload === 126) {
    if (b.length < 4) return undefined;
    payload = (b[2]! << 8) | b[3]!;
    headBytes = 4;
  } else if (payload === 127) {
    if (b.length < 10) return undefined;
    const view = new DataView(b.buffer, b.byteOffset + 2, 8);
    payload = Number(view.getBigUint64(0));
    headBytes = 10;
  }
  if (masked) headBytes += 4;
  if (inbox.size < headBytes) return undefined;
  return { fin, opcode, masked, headBytes, payload };
}

export function closePayload(code?: number, reason = ""): Uint8Array {
  if (code === undefined) return new Uint8Array(0);
  const text = encoder.encode(reason);
  const out = new Uint8Array(2 + text.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}

/** The code and reason of a close frame: 1005 for none, -1 when malformed. */
export function parseClose(data: Uint8Array): { code: number; reason: string } {
  if (data.length === 0) return { code: 1005, reason: "" };
  if (data.length === 1) return { code: -1, reason: "" };
  const code = (data[0]! << 8) | data[1]!;
  if (!isSendableCloseCode(code)) return { code: -1, reason: "" };
  try {
    return { code, reason: strictUtf8.decode(data.subarray(2)) };
  } catch {
    return { code: -1, reason: "" };
  }
}

/** XORs `data` with the 4-byte `mask` into a new array, four bytes at a time. */
export function applyMask(
  data: Uint8Array,
  mask: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const n = data.length;
  const out = new Uint8Array(n);
  out.set(data);
  const words = n >>> 2;
  if (words > 0) {
    const key = new Uint32Array(mask.slice(0, 4).buffer)[0]!;
    const view = new Uint32Array(out.buffer, 0, words);
    for (let i = 0; i < words; i++) view[i]! ^= key;
  }
  for (let i = words << 2; i < n; i++) out[i]! ^= mask[i & 3]!;
  return out;
}

export function join(
  parts: Uint8Array[],
  size: number,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
