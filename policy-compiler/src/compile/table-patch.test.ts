import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MapEntry } from '../compiled.js';
import { compareBytes, encodePolicyKey } from '../encode/codec.js';
import { entryPatch, identityRanges, keyIdentity } from './table-patch.js';
import { TableMemo } from './table-memo.js';

const entry = (prefixlen: number, identity: number, port: number, v: number): MapEntry => ({
  key: encodePolicyKey({ prefixlen, identity, protocol: 6, port }),
  value: new Uint8Array([v]),
});
const sorted = (es: MapEntry[]): MapEntry[] => {
  const m = new Map(es.map((e) => [Buffer.from(e.key).toString('hex'), e]));
  return [...m.values()].sort((a, b) => compareBytes(a.key, b.key));
};
// Keys: a few prefix lengths (as port prefixes give), identities 0..9.
const arbEntries = fc
  .array(
    fc.record({
      pl: fc.constantFrom(32, 40, 56, 64),
      id: fc.nat(9),
      port: fc.nat(3),
      v: fc.nat(2),
    }),
    { maxLength: 40 },
  )
  .map((xs) => sorted(xs.map((x) => entry(x.pl, x.id, x.port, x.v))));

describe('identityRanges', () => {
  it('finds exactly the entries of one identity, by binary search per prefix length', () => {
    fc.assert(
      fc.property(arbEntries, fc.nat(10), (es, n) => {
        const found = identityRanges(es, n).flatMap(([lo, hi]) => es.slice(lo, hi));
        expect(found).toEqual(es.filter((e) => keyIdentity(e.key) === n));
      }),
      { seed: 3, numRuns: 300 },
    );
  });
});

describe('entryPatch', () => {
  it('turns a into b key by key when only allowed identities gain or lose keys; null when a value changes or another identity would', () => {
    fc.assert(
      fc.property(
        arbEntries,
        arbEntries,
        fc.uniqueArray(fc.nat(9)),
        fc.uniqueArray(fc.nat(9)),
        (a, b, ins, rem) => {
          const d = entryPatch(
            a,
            b,
            (n) => ins.includes(n),
            (n) => rem.includes(n),
          );
          const ka = new Map(a.map((e) => [Buffer.from(e.key).toString('hex'), e]));
          const kb = new Map(b.map((e) => [Buffer.from(e.key).toString('hex'), e]));
          const valueChanged = [...ka].some(
            ([k, e]) => kb.has(k) && compareBytes(e.value, (kb.get(k) as MapEntry).value) !== 0,
          );
          const added = [...kb.keys()].filter((k) => !ka.has(k));
          const gone = [...ka.keys()].filter((k) => !kb.has(k));
          const ok =
            !valueChanged &&
            added.every((k) => ins.includes(keyIdentity((kb.get(k) as MapEntry).key))) &&
            gone.every((k) => rem.includes(keyIdentity((ka.get(k) as MapEntry).key)));
          if (!ok) {
            expect(d).toBeNull();
            return;
          }
          expect(d).not.toBeNull();
          for (const k of d?.remove ?? []) ka.delete(Buffer.from(k).toString('hex'));
          for (const e of d?.insert ?? []) ka.set(Buffer.from(e.key).toString('hex'), e);
          expect(sorted([...ka.values()])).toEqual(b);
        },
      ),
      { seed: 4, numRuns: 500 },
    );
  });
});

describe('TableMemo', () => {
  it('compares the inputs on every lookup: a fingerprint collision is a miss and both tables are kept apart', () => {
    const memo = new TableMemo();
    const a = { fingerprint: 'h1', inputs: ['program', '1 2 3'] };
    const b = { fingerprint: 'h1', inputs: ['program', '1 2 4'] };
    const ea = [entry(32, 1, 0, 1)];
    const eb = [entry(32, 2, 0, 1)];
    const ka = memo.set(a, ea);
    expect(memo.get(b)).toBeUndefined();
    const kb = memo.set(b, eb);
    expect(kb).not.toBe(ka);
    expect(memo.get(a)).toBe(ea);
    expect(memo.get(b)).toBe(eb);
    expect(memo.entriesAt(ka)).toBe(ea);
    expect(memo.entriesAt(kb)).toBe(eb);
    // equal inputs (other string objects) share the entry
    expect(memo.get({ fingerprint: 'h1', inputs: ['program', ['1', '2', '3'].join(' ')] })).toBe(
      ea,
    );
  });
});
