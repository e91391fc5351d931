import { basename } from "node:path";

/**
 * True when this process runs from source under `deno` rather than as a
 * `deno compile` binary (`server/bin/tqserver`).
 */
export function runsFromSource(): boolean {
  return /^deno(\.exe)?$/.test(basename(Deno.execPath()));
}

/**
 * Bytes of the one buffer {@linkcode raiseMallocThresholds} allocates and
 * frees: just under glibc's ceiling for its dynamic mmap threshold
 * (`DEFAULT_MMAP_THRESHOLD_MAX`, 32 MiB on 64-bit), counting the chunk header.
 */
const MALLOC_PRIME_BYTES = 31 * 1024 * 1024;

/**
 * Makes glibc keep freed memory for reuse instead of returning it to the
 * kernel and faulting it in again, by allocating one 31 MiB buffer and
 * freeing it at once (`ArrayBuffer.prototype.transfer(0)` frees it
 * synchronously; the pages are never touched).
 *
 * glibc serves allocations over 128 KiB with `mmap`, and when such a block
 * is freed it raises that threshold to the block's size and its trim
 * threshold to twice that (mallopt(3), "dynamic mmap threshold"). V8
 * collects a server's garbage bodies in batches of about 64 MiB (its
 * external-memory limit), so with the thresholds low each batch of fresh
 * 1 MiB answers is unmapped or trimmed and faulted in again (6 to 260 page
 * faults per uncached 1 MiB static answer, by load, and 1.1 ms of CPU
 * instead of 0.42 ms measured here), and which state a process was in
 * depended on what it had freed before. After this call the thresholds
 * are 31 and 62 MiB: up to 62 MiB of free heap stays mapped after a burst
 * of large answers (measured: 30 MiB more RSS after 10 MiB downloads),
 * which is the price.
 *
 * Without glibc (musl, macOS) this is one short-lived allocation and
 * nothing else. A `MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`,
 * `MALLOC_TOP_PAD_` or `MALLOC_MMAP_MAX_` in the environment turns glibc's
 * dynamic thresholds off, so the operator's setting wins
 * (docs/production.md).
 */
export function raiseMallocThresholds(): void {
  new Uint8Array(MALLOC_PRIME_BYTES).buffer.transfer(0);
}
