import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { portRangeCover, portRangeCoverSize } from './port-ranges.js';

const range = fc
  .tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }))
  .map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]);

/** Minimal cover size by dynamic programming over aligned blocks (independent of the greedy). */
function optimal(start: number, end: number): number {
  const memo = new Map<number, number>();
  const best = (lo: number): number => {
    if (lo > end) return 0;
    const hit = memo.get(lo);
    if (hit !== undefined) return hit;
    let r = Infinity;
    for (let size = 1; size <= 65536; size *= 2) {
      if (lo % size !== 0 || lo + size - 1 > end) break;
      r = Math.min(r, 1 + best(lo + size));
    }
    memo.set(lo, r);
    return r;
  };
  return best(start);
}

describe('port range prefix cover', () => {
  it('is exact: every block is aligned, blocks are disjoint and their union is the range', () => {
    fc.assert(
      fc.property(range, ([s, e]) => {
        const cover = portRangeCover(s, e);
        let next = s;
        for (const b of cover) {
          const size = 2 ** (16 - b.bits);
          expect(b.port % size).toBe(0);
          expect(b.port).toBe(next);
          next = b.port + size;
        }
        expect(next).toBe(e + 1);
        expect(portRangeCoverSize(s, e)).toBe(cover.length);
      }),
      { seed: 4, numRuns: 2000 },
    );
  });
  it('is minimal: no cover of the range by aligned blocks has fewer blocks', () => {
    const small = fc
      .tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 3000 }))
      .map(([a, len]) => [a, Math.min(65535, a + len)] as [number, number]);
    fc.assert(
      fc.property(small, ([s, e]) => {
        expect(portRangeCover(s, e).length).toBe(optimal(s, e));
      }),
      { seed: 5, numRuns: 300 },
    );
  });
  it('known covers', () => {
    expect(portRangeCover(0, 65535)).toEqual([{ port: 0, bits: 0 }]);
    expect(portRangeCover(80, 80)).toEqual([{ port: 80, bits: 16 }]);
    expect(portRangeCover(1024, 2047)).toEqual([{ port: 1024, bits: 6 }]);
    expect(portRangeCover(1, 65535)).toHaveLength(16);
    expect(() => portRangeCover(5, 4)).toThrow(/bad port range/);
  });
});
