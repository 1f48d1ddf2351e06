/**
 * Per-key table patches (EncodedDelta.tables.patch) in the real maps:
 * applied in place in the slot's inner map when this process knows its
 * content, written whole otherwise (fresh process over pinned maps, slot
 * never written, inserts that would not fit before the removals, a kernel
 * error on an insert or a delete); a later full sync skips what is unchanged;
 * and the programs (BPF_PROG_TEST_RUN) decide by the patched tables.
 * Deltas come from the real compiler (recompile) where practical.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BpfMap, mapFdById } from '../../../bpf/binding/index.js';
import { Datapath, type IfindexOf } from '../../../enforcer/src/datapath/datapath.js';
import { frame } from '../../../enforcer/src/datapath/packets.js';
import {
  EP_F_POLICY_READY,
  IPPROTO,
  decodeEndpointValue,
  endpointKey,
  u32Key,
} from '../../../enforcer/src/datapath/structs.js';
import type {
  CompiledTable,
  EncodedDelta,
  EncodedTables,
  MapEntry,
  TablePatch,
} from '../../../policy-compiler/src/compiled.js';
import {
  diffTables,
  initialState,
  recompile,
  type CompilerState,
} from '../../../policy-compiler/src/compile/index.js';
import type { World } from '../../../policy-compiler/src/model/index.js';
import { requirePrivileges } from '../../support/privileged.js';
import { buildWorld, ipBlock, np, npPods, pod, sel, tcp } from '../../support/world-builder.js';
import { ALLOW, DENY, endpoint, rule, table, tables } from './fixtures.js';

const LO = 1; // test_run device: loopback exists in every netns
const pinDir = `/sys/fs/bpf/palisade-patch-${process.pid}`;

beforeAll(() => requirePrivileges('root', 'bpffs'));
const opened: Datapath[] = [];
afterAll(() => {
  for (const dp of opened) dp.close();
  Datapath.removePins(pinDir);
});
function open(o: Parameters<typeof Datapath.open>[0] = { pinDir: null }): Datapath {
  const dp = Datapath.open(o);
  opened.push(dp);
  return dp;
}

// ------------------------------------------------------------------ worlds

// web (10.0.0.1) admits app=api on TCP 80 and two policy prefixes on TCP 443.
// Step 1: a pod api-2 (10.0.0.4, app=api, track=canary) appears; a policy
// selecting track=canary gives it an identity of its own, new to the compile,
// so web's ingress table gains its TCP 80 entry by a patch (insert).
// Step 2: 172.16.0.0/12 leaves web's policy; its CIDR identity is gone and
// web's ingress table loses its entry by a patch (remove).
const web = pod('prod/web', { labels: { app: 'web' }, ip: '10.0.0.1' });
const api = pod('prod/api', { labels: { app: 'api' }, ip: '10.0.0.2' });
const other = pod('prod/other', { labels: { app: 'other' }, ip: '10.0.0.3' });
const canary = pod('prod/api-2', { labels: { app: 'api', track: 'canary' }, ip: '10.0.0.4' });
const webIn = (cidrs: string[]) =>
  np('prod/web-in', {
    podSelector: sel({ app: 'web' }),
    ingress: [
      { peers: [npPods(sel({ app: 'api' }))], ports: [tcp(80)] },
      { peers: cidrs.map((c) => ipBlock(c)), ports: [tcp(443)] },
    ],
  });
const canaryIn = np('prod/canary-in', { podSelector: sel({ track: 'canary' }), ingress: [] });
const WORLDS: World[] = [
  buildWorld({
    pods: [web, api, other],
    networkPolicies: [webIn(['192.168.0.0/16', '172.16.0.0/12']), canaryIn],
  }),
  buildWorld({
    pods: [web, api, other, canary],
    networkPolicies: [webIn(['192.168.0.0/16', '172.16.0.0/12']), canaryIn],
  }),
  buildWorld({
    pods: [web, api, other, canary],
    networkPolicies: [webIn(['192.168.0.0/16']), canaryIn],
  }),
];

interface Step {
  readonly before: EncodedTables;
  readonly after: EncodedTables;
  readonly delta: EncodedDelta;
}
/** encoded[i] = the compile of WORLDS[i]; steps[i] = recompile from i to i + 1. */
const encoded: EncodedTables[] = [];
const steps: Step[] = [];
{
  const init = initialState(WORLDS[0]!);
  if (!init.ok) throw new Error(`world 0: ${init.error.message}`);
  let state: CompilerState = init.state;
  encoded.push(state.compiled.encoded);
  for (const w of WORLDS.slice(1)) {
    const r = recompile(state, w);
    if (!r.ok) throw new Error(r.error.message);
    steps.push({ before: state.compiled.encoded, after: r.state.compiled.encoded, delta: r.delta });
    state = r.state;
    encoded.push(state.compiled.encoded);
  }
}
const WEB = 'default/prod/web';
const ifindexOf: IfindexOf = (id) => (id === WEB ? LO : undefined);
const totals = (t: EncodedTables) => ({ ipcache: t.ipcache.length, localEndpoints: 1 });

// ------------------------------------------------------------------ helpers

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const text = (entries: readonly MapEntry[]): string[] =>
  entries.map((e) => `${hex(e.key)}=${hex(e.value)}`).sort();

/** Id of the inner map in a slot (null = empty). */
const slotId = (dp: Datapath, t: number): number | null =>
  dp.map('policy').lookup(u32Key(t))?.readUInt32LE(0) ?? null;

/** Runs fn on the inner map in a slot, behind the Datapath's back. */
function withInner<T>(dp: Datapath, t: number, fn: (m: BpfMap) => T): T {
  const id = slotId(dp, t);
  if (id === null) throw new Error(`slot ${t} is empty`);
  const m = BpfMap.fromFd(mapFdById(id));
  try {
    return fn(m);
  } finally {
    m.close();
  }
}

/** Every key=value of a slot's inner map, sorted. */
const dump = (dp: Datapath, t: number): string[] =>
  withInner(dp, t, (m) => text([...m.keys()].map((key) => ({ key, value: m.lookup(key)! }))));

/** Every table of `enc` is in the maps exactly, and no other slot is set. */
function expectTables(dp: Datapath, enc: EncodedTables): void {
  for (const t of enc.tables)
    expect(dump(dp, t.table), `table ${t.table}`).toEqual(text(t.entries));
  const set = new Set(enc.tables.map((t) => t.table));
  for (let t = 0; t < 64; t++) if (!set.has(t)) expect(slotId(dp, t), `slot ${t}`).toBeNull();
}

const idsOf = (dp: Datapath, ps: readonly TablePatch[]) =>
  new Map(ps.map((p) => [p.table.table, slotId(dp, p.table.table)]));

let sport = 30000;
/** web's ingress hook (the endpoint on lo) on a TCP SYN from `src`. */
const admits = (dp: Datapath, src: string, dport: number): boolean =>
  dp.testRun(
    'ingress',
    frame({ src, dst: '10.0.0.1', protocol: IPPROTO.TCP, sport: sport++, dport }),
    { ifindex: LO },
  ).allowed;

// ------------------------------------------------------------------ tests

describe('table patches in the datapath', () => {
  it('the compiler output used here patches: an insert-only and a remove-only delta', () => {
    const [add, drop] = steps as [Step, Step];
    expect(add.delta.tables.patch.length).toBeGreaterThan(0);
    expect(add.delta.tables.patch.every((p) => p.insert.length > 0 && p.remove.length === 0)).toBe(
      true,
    );
    expect(drop.delta.tables.patch.length).toBeGreaterThan(0);
    expect(drop.delta.tables.patch.every((p) => p.remove.length > 0 && p.insert.length === 0)).toBe(
      true,
    );
  });

  it('a patch is applied in place: the slot keeps its inner map, whose content then equals patch.table', () => {
    const dp = open();
    dp.applyFull(encoded[0]!, ifindexOf);
    for (const s of steps) {
      const ids = idsOf(dp, s.delta.tables.patch);
      const r = dp.applyDelta(s.delta, ifindexOf, totals(s.after));
      expect(r.tablesPatched).toBe(s.delta.tables.patch.length);
      expect(r.tablesWritten).toBe(s.delta.tables.replace.length);
      for (const p of s.delta.tables.patch) {
        expect(slotId(dp, p.table.table)).toBe(ids.get(p.table.table));
        expect(dump(dp, p.table.table)).toEqual(text(p.table.entries));
      }
      expectTables(dp, s.after);
    }
  });

  it('a patch with inserts and removals in one table (hand-made): in place, exact content', () => {
    const dp = open();
    const r = (id: number, port: number) =>
      rule(
        { identity: id, protocol: IPPROTO.TCP, port },
        { verdict: ALLOW, precedence: 1, cookie: 3 },
      );
    const before = table(7, [r(300, 80), r(301, 80), r(302, 443)]);
    dp.applyFull(tables({ tables: [before] }), () => undefined);
    const id = slotId(dp, 7);
    const after = table(7, [r(300, 80), r(302, 443), r(303, 80), r(303, 81)]);
    const patch: TablePatch = {
      table: after,
      insert: [r(303, 80), r(303, 81)],
      remove: [r(301, 80).key],
    };
    const res = dp.applyDelta(
      {
        ipcache: { upsert: [], remove: [] },
        endpoints: { upsert: [], remove: [] },
        tables: { replace: [], patch: [patch], remove: [] },
      },
      () => undefined,
    );
    expect(res).toMatchObject({ tablesPatched: 1, tablesWritten: 0 });
    expect(slotId(dp, 7)).toBe(id);
    expect(dump(dp, 7)).toEqual(text(after.entries));
  });

  it('without a known previous content (a fresh process over the pinned maps) the patch is written whole, content equal', () => {
    Datapath.removePins(pinDir);
    const s = steps[0]!;
    const first = open({ pinDir, adopt: false });
    first.applyFull(s.before, ifindexOf);
    const ids = idsOf(first, s.delta.tables.patch);
    first.close();
    const second = open({ pinDir, adopt: false });
    const r = second.applyDelta(s.delta, ifindexOf, totals(s.after));
    expect(r.tablesPatched).toBe(0);
    expect(r.tablesWritten).toBe(s.delta.tables.replace.length + s.delta.tables.patch.length);
    for (const p of s.delta.tables.patch) {
      expect(slotId(second, p.table.table)).not.toBe(ids.get(p.table.table)); // new inner map
      expect(dump(second, p.table.table)).toEqual(text(p.table.entries));
    }
    expectTables(second, s.after);
    // Now it knows what it wrote: the next patch goes in place.
    const next = steps[1]!;
    const ids2 = idsOf(second, next.delta.tables.patch);
    const r2 = second.applyDelta(next.delta, ifindexOf, totals(next.after));
    expect(r2.tablesPatched).toBe(next.delta.tables.patch.length);
    for (const p of next.delta.tables.patch)
      expect(slotId(second, p.table.table)).toBe(ids2.get(p.table.table));
    expectTables(second, next.after);
  });

  it('a patch of a slot never written is written whole', () => {
    const dp = open();
    const t = table(9, [
      rule({ identity: 400 }, { verdict: ALLOW, precedence: 1, cookie: 1 }),
      rule({ identity: 401 }, { verdict: DENY, precedence: 2, cookie: 2 }),
    ]);
    const r = dp.applyDelta(
      {
        ipcache: { upsert: [], remove: [] },
        endpoints: { upsert: [], remove: [] },
        tables: {
          replace: [],
          patch: [{ table: t, insert: [t.entries[1]!], remove: [] }],
          remove: [],
        },
      },
      () => undefined,
    );
    expect(r).toMatchObject({ tablesPatched: 0, tablesWritten: 1 });
    expect(dump(dp, 9)).toEqual(text(t.entries));
  });

  it('a patch whose inserts would not fit before its removals free room is written whole', () => {
    const dp = open({ pinDir: null, sizes: { tableEntries: 3 } });
    const e = (id: number) => rule({ identity: id }, { verdict: ALLOW, precedence: 1, cookie: 1 });
    dp.applyFull(tables({ tables: [table(4, [e(500), e(501), e(502)])] }), () => undefined);
    const id = slotId(dp, 4);
    const after = table(4, [e(501), e(502), e(503)]);
    const r = dp.applyDelta(
      {
        ipcache: { upsert: [], remove: [] },
        endpoints: { upsert: [], remove: [] },
        tables: {
          replace: [],
          patch: [{ table: after, insert: [e(503)], remove: [e(500).key] }],
          remove: [],
        },
      },
      () => undefined,
    );
    expect(r).toMatchObject({ tablesPatched: 0, tablesWritten: 1 });
    expect(slotId(dp, 4)).not.toBe(id);
    expect(dump(dp, 4)).toEqual(text(after.entries));
  });

  // A patch the map no longer fits (changed behind the datapath's back) is written whole.
  const fallbacks: [string, number, (m: BpfMap, p: TablePatch) => void][] = [
    [
      'a kernel error on an insert (key already there: EEXIST)',
      0,
      (m, p) => m.update(p.insert[0]!.key, p.insert[0]!.value),
    ],
    ['a failed delete (key already gone)', 1, (m, p) => expect(m.delete(p.remove[0]!)).toBe(true)],
  ];
  it.each(fallbacks)(
    '%s falls back to a whole write; content equals patch.table',
    (_what, step, tamper) => {
      const s = steps[step]!;
      const dp = open();
      dp.applyFull(s.before, ifindexOf);
      const [p, ...rest] = s.delta.tables.patch as [TablePatch, ...TablePatch[]];
      withInner(dp, p.table.table, (m) => tamper(m, p));
      const id = slotId(dp, p.table.table);
      const r = dp.applyDelta(s.delta, ifindexOf, totals(s.after));
      expect(r.tablesPatched).toBe(rest.length);
      expect(r.tablesWritten).toBe(s.delta.tables.replace.length + 1);
      expect(slotId(dp, p.table.table)).not.toBe(id);
      expect(dump(dp, p.table.table)).toEqual(text(p.table.entries));
      expectTables(dp, s.after);
    },
  );

  it('a failed delete whose whole write fails too: the table fails, its endpoints (written before the removals) fail closed, the sync throws', () => {
    const dp = open();
    const e = (id: number) => rule({ identity: id }, { verdict: ALLOW, precedence: 1, cookie: 1 });
    const ep = endpoint(WEB, 600, 5, 6);
    dp.applyFull(
      tables({ endpoints: [ep], tables: [table(5, [e(600)]), table(6, [e(600), e(601), e(605)])] }),
      ifindexOf,
    );
    expect(admits(dp, '10.9.9.9', 80)).toBe(false); // WORLD: not admitted
    // The delete finds its key gone (ENOENT); the whole write then fails as
    // well: patch.table holds a key the kernel refuses (prefix length 200;
    // the sizes add up, so the patch is tried in place first).
    withInner(dp, 6, (m) => m.delete(e(601).key));
    const bad = { key: Buffer.from(e(602).key), value: e(602).value };
    bad.key[0] = 200;
    const patch: TablePatch = {
      table: { table: 6, entries: [e(600), e(603), bad] },
      insert: [e(603)],
      remove: [e(601).key],
    };
    expect(() =>
      dp.applyDelta(
        {
          ipcache: { upsert: [], remove: [] },
          endpoints: { upsert: [{ ...ep, nodeId: 7 }], remove: [] },
          tables: { replace: [], patch: [patch], remove: [] },
        },
        ifindexOf,
      ),
    ).toThrow(/policy tables failed to load; their endpoints fail closed.*table 6/);
    const v = decodeEndpointValue(dp.map('endpoints').lookup(endpointKey(LO))!);
    expect(v.nodeId).toBe(7); // written in this sync, ready then
    expect(v.flags & EP_F_POLICY_READY).toBe(0); // and made not ready after the failure
    const dropsBefore = dp.dropStats().NO_ENDPOINT_POLICY.packets;
    expect(admits(dp, '10.9.9.9', 80)).toBe(false);
    expect(dp.dropStats().NO_ENDPOINT_POLICY.packets).toBe(dropsBefore + 1n);
    // The next full sync writes the table whole again and the endpoint is ready.
    const r = dp.applyFull(
      tables({ endpoints: [ep], tables: [table(5, [e(600)]), table(6, [e(600)])] }),
      ifindexOf,
    );
    expect(r.tablesWritten).toBe(1);
    expect(
      decodeEndpointValue(dp.map('endpoints').lookup(endpointKey(LO))!).flags & EP_F_POLICY_READY,
    ).toBe(EP_F_POLICY_READY);
  });

  it('a full sync after patches skips the tables whose content is unchanged and rewrites the ones that differ', () => {
    const dp = open();
    dp.applyFull(encoded[0]!, ifindexOf);
    for (const s of steps) dp.applyDelta(s.delta, ifindexOf, totals(s.after));
    const last = encoded[encoded.length - 1]!;
    const ids = new Map(last.tables.map((t) => [t.table, slotId(dp, t.table)]));
    // the same objects
    expect(dp.applyFull(last, ifindexOf)).toMatchObject({ tablesWritten: 0, tablesRemoved: 0 });
    // equal content in other objects (compared entry by entry)
    const copy: EncodedTables = {
      ...last,
      tables: last.tables.map((t) => ({
        table: t.table,
        entries: t.entries.map((x) => ({
          key: Uint8Array.from(x.key),
          value: Uint8Array.from(x.value),
        })),
      })),
    };
    expect(dp.applyFull(copy, ifindexOf)).toMatchObject({ tablesWritten: 0, tablesRemoved: 0 });
    for (const t of last.tables) expect(slotId(dp, t.table)).toBe(ids.get(t.table));
    // back to the first world: exactly the tables that differ are rewritten
    const first = encoded[0]!;
    const same = (a: CompiledTable, b: CompiledTable | undefined) =>
      b !== undefined && text(a.entries).join() === text(b.entries).join();
    const differ = first.tables.filter(
      (t) =>
        !same(
          t,
          last.tables.find((x) => x.table === t.table),
        ),
    );
    const gone = last.tables.filter((t) => !first.tables.some((x) => x.table === t.table));
    expect(differ.length).toBeGreaterThan(0);
    const r = dp.applyFull(first, ifindexOf);
    expect(r).toMatchObject({ tablesWritten: differ.length, tablesRemoved: gone.length });
    for (const t of first.tables) {
      if (differ.includes(t)) expect(slotId(dp, t.table)).not.toBe(ids.get(t.table));
      else expect(slotId(dp, t.table)).toBe(ids.get(t.table));
    }
    expectTables(dp, first);
  });

  it('verdicts follow the patched tables: the new identity is admitted where the policy says, the removed prefix no more, the others unchanged', () => {
    const dp = open();
    dp.applyFull(encoded[0]!, ifindexOf);
    const verdicts = () => ({
      canary80: admits(dp, '10.0.0.4', 80),
      canary81: admits(dp, '10.0.0.4', 81),
      api80: admits(dp, '10.0.0.2', 80),
      other80: admits(dp, '10.0.0.3', 80),
      cidr172: admits(dp, '172.16.1.1', 443),
      cidr192: admits(dp, '192.168.1.1', 443),
      cidr192on80: admits(dp, '192.168.1.1', 80),
    });
    const unchanged = { api80: true, other80: false, cidr192: true, cidr192on80: false };
    expect(verdicts()).toEqual({ ...unchanged, canary80: false, canary81: false, cidr172: true });
    const [add, drop] = steps as [Step, Step];
    expect(dp.applyDelta(add.delta, ifindexOf, totals(add.after)).tablesPatched).toBeGreaterThan(0);
    expect(verdicts()).toEqual({ ...unchanged, canary80: true, canary81: false, cidr172: true });
    expect(dp.applyDelta(drop.delta, ifindexOf, totals(drop.after)).tablesPatched).toBeGreaterThan(
      0,
    );
    expect(verdicts()).toEqual({ ...unchanged, canary80: true, canary81: false, cidr172: false });
    // and back (the reverse diffs patch too): the canary identity's entries go, the prefix's return
    const back = diffTables(encoded[2]!, encoded[0]!);
    expect(back.tables.patch.length).toBeGreaterThan(0);
    dp.applyDelta(back, ifindexOf, totals(encoded[0]!));
    expect(verdicts()).toEqual({ ...unchanged, canary80: false, canary81: false, cidr172: true });
    expectTables(dp, encoded[0]!);
  });
});
