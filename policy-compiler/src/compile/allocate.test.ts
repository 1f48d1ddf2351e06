import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocateNumbers } from './allocate.js';

describe('stable numbering', () => {
  it('kept keys keep their number, new keys take the lowest free ones in key order, numbers stay unique', () => {
    const keys = fc.uniqueArray(fc.string({ maxLength: 3 }), { maxLength: 30 });
    fc.assert(
      fc.property(keys, keys, (a, b) => {
        const first = allocateNumbers(a, undefined, 10);
        const second = allocateNumbers(b, first, 10);
        const nums = [...second.values()];
        expect(new Set(nums).size).toBe(nums.length);
        for (const k of b) if (first.has(k)) expect(second.get(k)).toBe(first.get(k));
        const kept = new Set(b.filter((k) => first.has(k)).map((k) => first.get(k)));
        const fresh = b.filter((k) => !first.has(k)).sort();
        const free: number[] = [];
        for (let n = 10; free.length < fresh.length; n++) if (!kept.has(n)) free.push(n);
        fresh.forEach((k, i) => expect(second.get(k)).toBe(free[i]));
      }),
      { seed: 1, numRuns: 300 },
    );
  });
});
