// The workers' destination and source caches (native/worker/dp.c), as their counters
// show them.
import { expect } from 'vitest';

/** One key replayed across two epochs: the tables answered it once per epoch (two
 *  misses), the cache every other time, and it was never bypassed. */
export function expectOneAnswerPerEpoch(misc: Record<string, bigint>, cache: 'dest' | 'src'): void {
  expect(misc[`${cache}CacheMisses`]).toBe(2n);
  expect(misc[`${cache}CacheHits`]).toBeGreaterThan(1000n);
  expect(misc[`${cache}CacheBypassed`]).toBe(0n);
}
