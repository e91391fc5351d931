/**
 * The CPU work of the instances benchmark, shared by its worker and its
 * calibration: `iterations` rounds of a 32-bit xorshift from `seed`.
 *
 * @module
 */

/** Runs `iterations` xorshift rounds from `seed` and returns the last value. */
export function work(seed: number, iterations: number): number {
  let x = seed | 0;
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x >>> 0;
}
