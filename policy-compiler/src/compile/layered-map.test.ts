import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FOLD_AT, LayeredMap } from './layered-map.js';

describe('LayeredMap', () => {
  it('reads like the map it describes after any updates, and earlier maps stay as they were', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            set: fc.array(fc.tuple(fc.nat(40), fc.nat(5)), { maxLength: 6 }),
            remove: fc.array(fc.nat(40), { maxLength: 6 }),
          }),
          { maxLength: 30 },
        ),
        (steps) => {
          let m: ReadonlyMap<number, number> = new Map([
            [1, 1],
            [2, 2],
          ]);
          let model = new Map(m);
          const history: [ReadonlyMap<number, number>, Map<number, number>][] = [];
          for (const st of steps) {
            history.push([m, new Map(model)]);
            m = LayeredMap.update(m, st.set, st.remove);
            for (const k of st.remove) model.delete(k);
            for (const [k, v] of st.set) model.set(k, v);
            model = new Map(model);
            expect(m.size).toBe(model.size);
            expect(new Map(m)).toEqual(model);
            for (let k = 0; k <= 40; k++) {
              expect(m.has(k)).toBe(model.has(k));
              expect(m.get(k)).toBe(model.get(k));
            }
            expect([...m.keys()].sort()).toEqual([...model.keys()].sort());
          }
          for (const [old, was] of history) expect(new Map(old)).toEqual(was);
        },
      ),
      { seed: 3, numRuns: 300 },
    );
  });

  it('folds its layer into a plain map once the layer outgrows FOLD_AT', () => {
    let m: ReadonlyMap<number, number> = new Map();
    for (let i = 0; i <= FOLD_AT; i++) m = LayeredMap.update(m, [[i, i]]);
    expect(m).toBeInstanceOf(Map);
    expect(m.size).toBe(FOLD_AT + 1);
  });
});
