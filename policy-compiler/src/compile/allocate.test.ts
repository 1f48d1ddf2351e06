import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocateNumbers } from './allocate.js';

describe('stable numbering', () => {
  it('kept keys keep their number, new keys take the lowest numbers the previous numbering did not use (freed ones wait a compile), in key order, numbers stay unique', () => {
    const keys = fc.uniqueArray(fc.string({ maxLength: 3 }), { maxLength: 30 });
    fc.assert(
      fc.property(keys, keys, (a, b) => {
        const first = allocateNumbers(a, undefined, 10);
        const second = allocateNumbers(b, first, 10);
        const nums = [...second.values()];
        expect(new Set(nums).size).toBe(nums.length);
        for (const k of b) if (first.has(k)) expect(second.get(k)).toBe(first.get(k));
        const taken = new Set(first.values());
        const fresh = b.filter((k) => !first.has(k)).sort();
        const free: number[] = [];
        for (let n = 10; free.length < fresh.length; n++) if (!taken.has(n)) free.push(n);
        fresh.forEach((k, i) => expect(second.get(k)).toBe(free[i]));
        // a number freed here (a key of `a` not in `b`) is taken by nothing new here
        const freed = new Set(a.filter((k) => !b.includes(k)).map((k) => first.get(k)));
        for (const k of fresh) expect(freed.has(second.get(k))).toBe(false);
        // ... and is free again for the compile after
        const third = allocateNumbers([...b, '\u0000new'], second, 10);
        const lowestFree = (() => {
          const used = new Set(second.values());
          let n = 10;
          while (used.has(n)) n++;
          return n;
        })();
        expect(third.get('\u0000new')).toBe(lowestFree);
      }),
      { seed: 1, numRuns: 300 },
    );
  });
});
