/**
 * Incremental == full: over random sequences of changes (pods added,
 * removed, relabelled; namespaces relabelled; policies added, changed,
 * removed), each recompile equals, byte for byte, the full compile of the
 * new world given the previous numbering; its delta turns the previous
 * tables into the new ones; and an error leaves the previous state in force.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EncodedDelta, EncodedTables, MapEntry } from '../../policy-compiler/src/compiled.js';
import { keyIdentity } from '../../policy-compiler/src/compile/table-patch.js';
import { compile, type Compiled } from '../../policy-compiler/src/compile/compile.js';
import {
  applyChange,
  initialState,
  recompile,
  type CompilerState,
  type WorldChange,
} from '../../policy-compiler/src/compile/incremental.js';
import { decodeIpcacheValue, hex } from '../../policy-compiler/src/encode/codec.js';
import type {
  ClusterPolicy,
  NetworkPolicy,
  Pod,
  World,
} from '../../policy-compiler/src/model/index.js';
import { plainMaps } from '../support/plain-maps.js';
import { arbWorld } from '../support/random-world.js';

function bytes(t: EncodedTables): unknown {
  return {
    ipcache: t.ipcache.map((e) => `${hex(e.key)}=${hex(e.value)}`),
    endpoints: t.endpoints,
    tables: t.tables.map((x) => ({
      table: x.table,
      entries: x.entries.map((e) => `${hex(e.key)}=${hex(e.value)}`),
    })),
    cookies: [...t.cookies].sort((a, b) => a[0] - b[0]),
  };
}

function applyDelta(t: EncodedTables, d: EncodedDelta): unknown {
  const ipc = new Map(t.ipcache.map((e) => [hex(e.key), e]));
  for (const k of d.ipcache.remove) ipc.delete(hex(k));
  for (const e of d.ipcache.upsert) ipc.set(hex(e.key), e);
  const eps = new Map(t.endpoints.map((e) => [e.endpoint, e]));
  for (const k of d.endpoints.remove) eps.delete(k);
  for (const e of d.endpoints.upsert) eps.set(e.endpoint, e);
  const tables = new Map(t.tables.map((x) => [x.table, x]));
  for (const k of d.tables.remove) tables.delete(k);
  for (const x of d.tables.replace) tables.set(x.table, x);
  // Patches are applied key by key to the old entries, never from patch.table.
  for (const p of d.tables.patch) {
    const before = tables.get(p.table.table);
    expect(before, `patch of table ${p.table.table}, which did not exist`).toBeDefined();
    const m = new Map((before?.entries ?? []).map((e) => [hex(e.key), e]));
    for (const k of p.remove) expect(m.delete(hex(k)), 'removed key was there').toBe(true);
    for (const e of p.insert) {
      expect(m.has(hex(e.key)), 'inserted key was not there').toBe(false);
      m.set(hex(e.key), e);
    }
    const entries = [...m.keys()].sort().map((k) => m.get(k) as MapEntry);
    tables.set(p.table.table, { table: p.table.table, entries });
  }
  return {
    ipcache: [...ipc.keys()]
      .sort()
      .map((k) => `${k}=${hex((ipc.get(k) as { value: Uint8Array }).value)}`),
    endpoints: [...eps.values()].sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1)),
    tables: [...tables.values()]
      .sort((a, b) => a.table - b.table)
      .map((x) => ({ table: x.table, n: x.entries.map((e) => hex(e.key) + hex(e.value)) })),
  };
}
const normal = (t: EncodedTables): unknown =>
  applyDelta(t, {
    ipcache: { upsert: [], remove: [] },
    endpoints: { upsert: [], remove: [] },
    tables: { replace: [], patch: [], remove: [] },
  });

/** Incremental equals full: bytes, side metadata, numbering and stats. */
function expectSameCompile(inc: Compiled, full: Compiled): void {
  expect(bytes(inc.encoded)).toEqual(bytes(full.encoded));
  expect(plainMaps(inc.meta)).toEqual(plainMaps(full.meta));
  expect(plainMaps(inc.allocation)).toEqual(plainMaps(full.allocation));
  expect(inc.stats).toEqual(full.stats);
}

/** The delta turns the old tables into the new ones. */
function expectDeltaApplies(old: EncodedTables, next: EncodedTables, d: EncodedDelta): void {
  expect(applyDelta(old, d)).toEqual(normal(next));
}

/**
 * A table is replaced or patched only when its bytes changed; a patch only
 * touches identities no address or endpoint refers to while it is applied
 * (inserts: none before; removals: none after).
 */
function expectOnlyChangedTablesReplaced(
  old: EncodedTables,
  d: EncodedDelta,
  next: EncodedTables,
): void {
  for (const p of d.tables.patch) expect(p.insert.length + p.remove.length).toBeGreaterThan(0);
  const before = referenced(old);
  const after = referenced(next);
  for (const p of d.tables.patch) {
    for (const e of p.insert) expect(before.has(keyIdentity(e.key))).toBe(false);
    for (const k of p.remove) expect(after.has(keyIdentity(k))).toBe(false);
  }
  for (const t of d.tables.replace) {
    const before = old.tables.find((x) => x.table === t.table);
    if (before !== undefined)
      expect(bytes({ ...old, tables: [before] })).not.toEqual(bytes({ ...old, tables: [t] }));
  }
}

/** The delta turns the old tables into the new ones, and touches only tables that changed. */
function expectExactDelta(
  old: EncodedTables,
  inc: { readonly delta: EncodedDelta; readonly state: CompilerState },
): void {
  expectDeltaApplies(old, inc.state.compiled.encoded, inc.delta);
  expectOnlyChangedTablesReplaced(old, inc.delta, inc.state.compiled.encoded);
}

/** Identities the ipcache and endpoints name (what packets are looked up with). */
function referenced(t: EncodedTables): Set<number> {
  const out = new Set<number>([0, 1]);
  for (const e of t.ipcache) {
    const v = decodeIpcacheValue(e.value);
    out.add(v.identity).add(v.nsIdentity).add(v.cidrIdentity);
  }
  for (const e of t.endpoints) out.add(e.identity);
  return out;
}

/** Changes drawn from a second random world, so they touch names the first one has. */
function changesFrom(donor: World, picks: number[]): WorldChange[] {
  const out: WorldChange[] = [];
  for (const n of picks) {
    switch (n % 7) {
      case 0: {
        const p = donor.pods[n % Math.max(1, donor.pods.length)];
        if (p) out.push({ kind: 'upsertPod', pod: p });
        break;
      }
      case 1: {
        const p = donor.pods[(n >> 3) % Math.max(1, donor.pods.length)];
        if (p)
          out.push({ kind: 'removePod', cluster: p.cluster, namespace: p.namespace, name: p.name });
        break;
      }
      case 2: {
        const ns = donor.namespaces[n % donor.namespaces.length];
        if (ns) out.push({ kind: 'upsertNamespace', namespace: ns });
        break;
      }
      case 3: {
        const p = donor.networkPolicies[n % Math.max(1, donor.networkPolicies.length)];
        if (p) out.push({ kind: 'upsertNetworkPolicy', policy: p });
        break;
      }
      case 4: {
        const p = donor.networkPolicies[(n >> 3) % Math.max(1, donor.networkPolicies.length)];
        if (p)
          out.push({
            kind: 'removeNetworkPolicy',
            cluster: p.cluster,
            namespace: p.namespace,
            name: p.name,
          });
        break;
      }
      case 5: {
        const p = donor.clusterPolicies[n % Math.max(1, donor.clusterPolicies.length)];
        if (p) out.push({ kind: 'upsertClusterPolicy', policy: p });
        break;
      }
      case 6: {
        const p = donor.clusterPolicies[(n >> 3) % Math.max(1, donor.clusterPolicies.length)];
        if (p)
          out.push({
            kind: 'removeClusterPolicy',
            policyKind: p.kind,
            cluster: p.cluster,
            name: p.name,
          });
        break;
      }
    }
  }
  return out;
}

/**
 * Pod-only changes, the kind the pod-only path (compile/pod-changes.ts)
 * takes: relabel a pod to another pod's labels, clone a pod (new name, a
 * fresh address), remove a pod, move a pod's address to a fresh one. Many
 * create or delete identities or classes (the pod path renumbers and rebuilds
 * the tables reading the sets they join or leave); a few need the general
 * path (hostNetwork pods, address conflicts).
 */
function podChange(w: World, n: number, step: number): World {
  const pods = w.pods;
  if (pods.length === 0) return w;
  const i = n % pods.length;
  const j = (n >> 4) % pods.length;
  const p = pods[i] as Pod;
  const q = pods[j] as Pod;
  const fresh = [`10.9.${step & 255}.${(n % 250) + 1}`];
  const replace = (np: Pod): World => ({ ...w, pods: pods.map((x) => (x === p ? np : x)) });
  switch ((n >> 9) % 4) {
    case 0:
      return replace({ ...p, labels: q.labels });
    case 1:
      return applyChange(w, {
        kind: 'upsertPod',
        pod: { ...q, name: `${q.name}-c${step}`, ips: fresh },
      });
    case 2:
      return applyChange(w, {
        kind: 'removePod',
        cluster: p.cluster,
        namespace: p.namespace,
        name: p.name,
      });
    default:
      return replace({ ...p, ips: fresh });
  }
}

/**
 * Policy-only changes, the kind the policy path (compile/policy-changes.ts)
 * takes: a NetworkPolicy gets another's rules, selector or policy types, is
 * cloned under a new name (possibly into another namespace) or removed; a
 * cluster policy gets another action, priority or mode, is cloned or
 * removed. Most keep every label key and prefix in use (the policy path);
 * some remove the last use of one (the general path).
 */
function policyChange(w: World, n: number, step: number): World {
  const nps = w.networkPolicies;
  const cps = w.clusterPolicies;
  const kind = (n >> 6) % 8;
  if (kind < 5 && nps.length > 0) {
    const p = nps[n % nps.length] as NetworkPolicy;
    const q = nps[(n >> 3) % nps.length] as NetworkPolicy;
    const set = (np: NetworkPolicy): World =>
      applyChange(w, { kind: 'upsertNetworkPolicy', policy: np });
    switch (kind) {
      case 0:
        return set({ ...p, ingress: q.ingress, egress: q.egress, revision: `r${step}` });
      case 1:
        return set({ ...p, podSelector: q.podSelector });
      case 2:
        return set({
          ...p,
          policyTypes: { ingress: !p.policyTypes.ingress, egress: p.policyTypes.ingress },
        });
      case 3:
        return set({ ...p, name: `${p.name}-c${step}`, namespace: q.namespace });
      default:
        return applyChange(w, {
          kind: 'removeNetworkPolicy',
          cluster: p.cluster,
          namespace: p.namespace,
          name: p.name,
        });
    }
  }
  if (cps.length === 0) return w;
  const p = cps[n % cps.length] as ClusterPolicy;
  const set = (cp: ClusterPolicy): World =>
    applyChange(w, { kind: 'upsertClusterPolicy', policy: cp });
  switch (n % 5) {
    case 0:
      return set({
        ...p,
        ingress: p.ingress.map((r) => ({
          ...r,
          action: r.action === 'Accept' ? 'Deny' : 'Accept',
        })),
      });
    case 1:
      return set({ ...p, priority: (p.priority + 7) % 50 });
    case 2:
      return set({ ...p, mode: p.mode === 'Audit' ? 'Enforce' : 'Audit' });
    case 3:
      return set({ ...p, name: `${p.name}-c${step}` });
    default:
      return applyChange(w, {
        kind: 'removeClusterPolicy',
        policyKind: p.kind,
        cluster: p.cluster,
        name: p.name,
      });
  }
}

describe('incremental compile', () => {
  it('policy and pod changes: the policy path equals the full compile (tables, metadata, numbering), its delta is exact and minimal, and it is taken', () => {
    const paths: Record<string, number> = {};
    fc.assert(
      fc.property(
        arbWorld(),
        fc.array(fc.nat(1 << 12), { minLength: 1, maxLength: 10 }),
        (w0, picks) => {
          const init = initialState(w0);
          if (!init.ok) return;
          let state: CompilerState = init.state;
          picks.forEach((n, step) => {
            // Mostly policy changes, some pod changes between them (the index carries over).
            const world =
              n % 4 === 3 ? podChange(state.world, n, step) : policyChange(state.world, n, step);
            const full = compile(world, { previous: state.compiled.allocation });
            const inc = recompile(state, world);
            expect(inc.ok).toBe(full.ok);
            if (!inc.ok || !full.ok) {
              if (!inc.ok && !full.ok) expect(inc.error).toEqual(full.error);
              return;
            }
            paths[inc.work.path] = (paths[inc.work.path] ?? 0) + 1;
            // policy changes that add or remove a policy prefix (CIDR identities and ipcache entries change)
            if (
              inc.work.path === 'policies' &&
              inc.delta.ipcache.upsert.length + inc.delta.ipcache.remove.length > 0
            )
              paths['policies+cidr'] = (paths['policies+cidr'] ?? 0) + 1;
            if (inc.delta.tables.patch.length > 0) paths['patched'] = (paths['patched'] ?? 0) + 1;
            expectSameCompile(inc.state.compiled, full.compiled);
            expectExactDelta(state.compiled.encoded, inc);
            state = inc.state;
          });
        },
      ),
      { seed: 12, numRuns: 150 },
    );
    expect(paths['policies'] ?? 0).toBeGreaterThan(100);
    expect(paths['policies+cidr'] ?? 0).toBeGreaterThan(10);
    // prefix changes patch the tables reading the changed CIDR sets key by key
    expect(paths['patched'] ?? 0).toBeGreaterThan(5);
    expect(paths['general'] ?? 0).toBeGreaterThan(0);
    expect(paths['pods'] ?? 0).toBeGreaterThan(0);
  });

  it('pod-only changes: the pod path equals the full compile (tables, metadata, numbering), its delta is exact, and it is taken, also when identities or classes appear or vanish', () => {
    let pods = 0;
    let general = 0;
    let created = 0;
    let patched = 0;
    fc.assert(
      fc.property(
        arbWorld(),
        fc.array(fc.nat(1 << 12), { minLength: 1, maxLength: 10 }),
        (w0, picks) => {
          const init = initialState(w0);
          if (!init.ok) return;
          let state: CompilerState = init.state;
          picks.forEach((n, step) => {
            const world = podChange(state.world, n, step);
            const full = compile(world, { previous: state.compiled.allocation });
            const inc = recompile(state, world);
            expect(inc.ok).toBe(full.ok);
            if (!inc.ok || !full.ok) {
              if (!inc.ok && !full.ok) expect(inc.error).toEqual(full.error);
              return;
            }
            if (inc.work.path === 'pods') {
              pods++;
              if (
                inc.state.compiled.stats.identities !== state.compiled.stats.identities ||
                inc.state.compiled.stats.tables !== state.compiled.stats.tables ||
                inc.rebuiltTables > 0
              )
                created++;
            } else general++;
            if (inc.delta.tables.patch.length > 0) patched++;
            expectSameCompile(inc.state.compiled, full.compiled);
            expectExactDelta(state.compiled.encoded, inc);
            state = inc.state;
          });
        },
      ),
      { seed: 11, numRuns: 150 },
    );
    // Both paths are exercised (a silent fallback everywhere would make the first count 0).
    expect(pods).toBeGreaterThan(100);
    // ... including changes that create or delete identities or classes
    expect(created).toBeGreaterThan(50);
    // new or vanished identities patch the tables reading their sets in place
    expect(patched).toBeGreaterThan(20);
    expect(general).toBeGreaterThan(0);
  });

  it('equals the full compile given the previous numbering, byte for byte, over random change sequences; the delta is exact', () => {
    fc.assert(
      fc.property(
        arbWorld(),
        arbWorld(),
        fc.array(fc.nat(1000), { minLength: 1, maxLength: 8 }),
        (w0, donor, picks) => {
          const init = initialState(w0);
          if (!init.ok) return; // e.g. an address conflict in w0: nothing to recompile
          let state: CompilerState = init.state;
          for (const change of changesFrom(donor, picks)) {
            const world = applyChange(state.world, change);
            const full = compile(world, { previous: state.compiled.allocation });
            const inc = recompile(state, world);
            expect(inc.ok).toBe(full.ok);
            if (!inc.ok || !full.ok) {
              if (!inc.ok && !full.ok) expect(inc.error).toEqual(full.error);
              continue; // state stays: the previous tables remain in force
            }
            expect(bytes(inc.state.compiled.encoded)).toEqual(bytes(full.compiled.encoded));
            expectExactDelta(state.compiled.encoded, inc);
            state = inc.state;
          }
        },
      ),
      { seed: 7, numRuns: 150 },
    );
  });

  it('an unchanged world recompiles to an empty delta, reusing every table', () => {
    fc.assert(
      fc.property(arbWorld(), (w) => {
        const init = initialState(w);
        if (!init.ok) return;
        const r = recompile(init.state, w);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect(r.rebuiltTables).toBe(0);
        expect(
          r.delta.ipcache.upsert.length +
            r.delta.ipcache.remove.length +
            r.delta.endpoints.upsert.length +
            r.delta.endpoints.remove.length,
        ).toBe(0);
        expect(r.delta.tables.replace.length + r.delta.tables.remove.length).toBe(0);
      }),
      { seed: 8, numRuns: 100 },
    );
  });
});
