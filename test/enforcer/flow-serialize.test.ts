// Record shapes are pinned byte for byte: the fast record builder and
// serializer (flows/record.ts, flows/serialize.ts) must produce exactly what
// the straightforward implementation (object literals + JSON.stringify) did.
// GOLDEN_* digests were computed with that implementation (before the fast
// path) over a deterministic corpus of events covering every event type,
// direction, verdict, staged verdict, protocol, drop reason, cookie kind,
// address family and label escaping.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeEvent, type PalEvent } from '../../enforcer/src/flows/event-decode.js';
import {
  lostEventsRecord,
  rfc3339Nano,
  toFlowRecord,
  type FlowContext,
  type FlowRecord,
} from '../../enforcer/src/flows/record.js';
import { recordJson, writeRecordJson } from '../../enforcer/src/flows/serialize.js';
import { LineBatch } from '../../enforcer/src/flows/sinks.js';
import { toOcsf } from '../../enforcer/src/flows/ocsf.js';
import { buildEvent, type EventFields } from './event-builder.js';
import { DB, makeContext, WEB } from './flow-context.js';

/** mulberry32: a small deterministic PRNG, so the corpus is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const V4 = ['10.0.0.1', '10.0.0.2', '198.51.100.7', '10.0.0.3'];
const V6 = ['fd00::9', 'fd00::10', '2001:db8::1', 'fd00::1:0:0:2'];

function corpusFields(n: number, seed = 7): EventFields[] {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const out: EventFields[] = [];
  for (let i = 0; i < n; i++) {
    const v6 = r() < 0.25;
    const ips = v6 ? V6 : V4;
    out.push({
      // spread over a few seconds and across second boundaries
      tsNs: BigInt(Math.floor(r() * 5e9)) + 999_999_000n,
      type: pick([1, 2, 3, 4]),
      direction: pick([0, 1]),
      verdict: pick([0, 1]),
      staged: pick([0, 0, 1, 2]),
      protocol: pick([6, 6, 17, 132, 1, 58, 47]),
      dropReason: pick([0, 1, 2, 3, 4, 5, 6, 9]),
      tcpFlags: Math.floor(r() * 256),
      ifindex: 1 + Math.floor(r() * 50),
      srcIdentity: Math.floor(r() * 70000),
      dstIdentity: Math.floor(r() * 70000),
      cookie: pick([0, 11, 12, 13, 99]),
      stagedCookie: pick([0, 11, 12, 13, 99]),
      revision: Math.floor(r() * 2 ** 32),
      saddr: pick(ips),
      daddr: pick(ips),
      sport: Math.floor(r() * 65536),
      dport: Math.floor(r() * 65536),
      pktLen: Math.floor(r() * 9000),
      suppressed: pick([0, 0, 0, 3, 100000]),
    });
  }
  return out;
}

function ev(f: EventFields): PalEvent {
  const r = decodeEvent(buildEvent(f));
  if (!r.ok) throw new Error(r.error);
  return r.event;
}

/** A context whose labels and names need JSON escaping. */
function escapingContext(): FlowContext {
  const odd = {
    ...DB,
    id: 'east/shop/"db"\\0',
    pod: 'db-"0"',
    labels: { 'a"b': 'ü\n\u2028', app: 'db' },
  };
  return makeContext({
    nodeName: 'east/node-"a"',
    endpoint: (ip) => (ip === '10.0.0.1' ? WEB : ip === '10.0.0.2' ? odd : undefined),
  });
}

function digest(lines: Iterable<string>): string {
  const h = createHash('sha256');
  for (const l of lines) h.update(l).update('\n');
  return h.digest('hex');
}

function* nativeLines(ctx: FlowContext, fields: EventFields[]): Generator<string> {
  for (const f of fields) yield JSON.stringify(toFlowRecord(ev(f), ctx));
}
function* ocsfLines(ctx: FlowContext, fields: EventFields[]): Generator<string> {
  for (const f of fields) yield JSON.stringify(toOcsf(toFlowRecord(ev(f), ctx)));
}

const GOLDEN_NATIVE = '4379dbe2acda03b8c272b59777d2b9cd3d2de78f07154fac959d5688f6d92e66';
const GOLDEN_NATIVE_ESCAPING = '614a91d4d3c31bba821c2421e281435baa18aa50d660842aa7745773e7ccce15';
const GOLDEN_OCSF = '071cb4500ea9d6de58258a320c7b474ff10ac258063c60aac58e6c3ec9e78066';

describe('record shapes are unchanged byte for byte', () => {
  const corpus = corpusFields(600);
  it('native records (JSON.stringify of toFlowRecord) match the pinned corpus', () => {
    expect(digest(nativeLines(makeContext(), corpus))).toBe(GOLDEN_NATIVE);
    expect(digest(nativeLines(escapingContext(), corpus))).toBe(GOLDEN_NATIVE_ESCAPING);
  });
  it('OCSF events match the pinned corpus', () => {
    expect(digest(ocsfLines(makeContext(), corpus))).toBe(GOLDEN_OCSF);
  });
});

const fieldsArb: fc.Arbitrary<EventFields> = fc.record({
  tsNs: fc.bigInt({ min: 0n, max: 2n ** 63n }),
  type: fc.constantFrom(1, 2, 3, 4),
  direction: fc.constantFrom(0, 1),
  verdict: fc.constantFrom(0, 1),
  staged: fc.constantFrom(0, 1, 2),
  protocol: fc.integer({ min: 0, max: 255 }),
  dropReason: fc.integer({ min: 0, max: 255 }),
  tcpFlags: fc.integer({ min: 0, max: 255 }),
  srcIdentity: fc.nat({ max: 2 ** 32 - 1 }),
  dstIdentity: fc.nat({ max: 2 ** 32 - 1 }),
  cookie: fc.constantFrom(0, 11, 12, 13, 77),
  stagedCookie: fc.constantFrom(0, 11, 12, 13, 77),
  revision: fc.nat({ max: 2 ** 32 - 1 }),
  saddr: fc.constantFrom(...V4),
  daddr: fc.constantFrom(...V4),
  sport: fc.nat({ max: 65535 }),
  dport: fc.nat({ max: 65535 }),
  pktLen: fc.nat({ max: 2 ** 32 - 1 }),
  suppressed: fc.nat({ max: 2 ** 32 - 1 }),
});

describe('recordJson', () => {
  it('equals JSON.stringify for every record toFlowRecord builds', () => {
    const contexts = [makeContext(), escapingContext()];
    fc.assert(
      fc.property(fieldsArb, fc.boolean(), fc.nat({ max: 1 }), (f, v6, c) => {
        const fields = v6
          ? { ...f, saddr: V6[(f.sport ?? 0) % 4], daddr: V6[(f.dport ?? 0) % 4] }
          : f;
        const rec = toFlowRecord(ev(fields), contexts[c] as FlowContext);
        expect(recordJson(rec)).toBe(JSON.stringify(rec));
      }),
      { numRuns: 2000 },
    );
  });

  it('writeRecordJson writes the UTF-8 bytes of JSON.stringify, line after line', () => {
    const contexts = [makeContext(), escapingContext()];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fieldsArb, fc.boolean(), fc.nat({ max: 1 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (items) => {
          const lines = new LineBatch();
          let expected = '';
          for (const [f, v6, c] of items) {
            const fields = v6
              ? { ...f, saddr: V6[(f.sport ?? 0) % 4], daddr: V6[(f.dport ?? 0) % 4] }
              : f;
            const rec = toFlowRecord(ev(fields), contexts[c] as FlowContext);
            writeRecordJson(rec, lines);
            lines.endLine();
            expected += `${JSON.stringify(rec)}\n`;
          }
          const lost = lostEventsRecord('n"é', 's', 1, new Date(0), new Date(1), new Date(2));
          writeRecordJson(lost, lines);
          lines.endLine();
          expected += `${JSON.stringify(lost)}\n`;
          expect(lines.lines).toBe(items.length + 1);
          expect(Buffer.from(lines.bytesView()).equals(Buffer.from(expected))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('any other record (loss record, a record read back from a file) is JSON.stringify', () => {
    const lost = lostEventsRecord('n"1', 'flow_pipeline', 3, new Date(0), new Date(1), new Date(2));
    expect(recordJson(lost)).toBe(JSON.stringify(lost));
    const rec = toFlowRecord(ev({ type: 1, cookie: 11 }), makeContext());
    // parsed back: a plain object whose key order is whatever the text had
    const reordered = JSON.parse(JSON.stringify(rec)) as FlowRecord;
    const { flow, ...rest } = reordered;
    const moved = { ...rest, flow: { ...flow, extra: 'kept' } } as unknown as FlowRecord;
    expect(recordJson(moved)).toBe(JSON.stringify(moved));
    expect(JSON.parse(recordJson(moved))).toMatchObject({ flow: { extra: 'kept' } });
  });

  it('record times equal rfc3339Nano in any order, near 1970 too (clock offset 0)', () => {
    const ctx = makeContext({ clockOffsetNs: 0n });
    for (const ts of [5n, 999_999_999n, 1_000_000_000n, 3n, 1_700_000_000_123_456_789n, 42n]) {
      const r = toFlowRecord(ev({ tsNs: ts }), ctx);
      expect([ts, r.time, r.flow.time]).toEqual([ts, rfc3339Nano(ts), rfc3339Nano(ts)]);
    }
  });

  it('the same event bytes give the same uuid; any other byte gives another', () => {
    const a = toFlowRecord(ev({ tsNs: 42n }), makeContext()).flow.uuid;
    expect(toFlowRecord(ev({ tsNs: 42n }), makeContext()).flow.uuid).toBe(a);
    expect(toFlowRecord(ev({ tsNs: 42n, pktLen: 61 }), makeContext()).flow.uuid).not.toBe(a);
    expect(
      toFlowRecord(ev({ tsNs: 42n }), makeContext({ nodeName: 'east/node-b' })).flow.uuid,
    ).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
