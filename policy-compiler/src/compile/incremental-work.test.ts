/**
 * A single-pod change reuses the compiled policies and classes and touches
 * only the matcher sets whose identities changed; the result still equals
 * the full compile byte for byte (test/differential/incremental.test.ts
 * checks that over random change sequences).
 */
import { keyIdentity } from './table-patch.js';
import { describe, expect, it } from 'vitest';
import {
  buildWorld,
  cp,
  cpNamespaces,
  cpPods,
  namespace,
  np,
  npPods,
  pod,
  sel,
  tcp,
  ALL,
} from '../../../test/support/world-builder.js';
import { podId } from '../model/endpoint.js';
import type { World } from '../model/world.js';
import { plainMaps } from '../../../test/support/plain-maps.js';
import { compile } from './compile.js';
import { applyChange, initialState, recompile } from './incremental.js';

const apps = ['web', 'api', 'db', 'cache'];
const world: World = buildWorld({
  namespaces: Array.from({ length: 6 }, (_, i) => namespace(`ns${i}`, { team: `t${i % 3}` })),
  pods: Array.from({ length: 60 }, (_, i) =>
    pod(`ns${i % 6}/p${i}`, {
      labels: { app: apps[i % 4] as string },
      ip: `10.0.${i >> 8}.${(i & 255) + 1}`,
    }),
  ),
  networkPolicies: Array.from({ length: 6 }, (_, i) =>
    np(`ns${i}/db`, {
      podSelector: sel({ app: 'db' }),
      ingress: [{ peers: [npPods(sel({ app: 'api' }), ALL)], ports: [tcp(5432)] }],
    }),
  ),
  clusterPolicies: [
    cp('team-t0', {
      subject: { namespaces: sel({ team: 't0' }), pods: ALL },
      ingress: [{ action: 'Deny', peers: [cpNamespaces(sel({ team: 't2' }))] }],
    }),
    cp('web-only', {
      priority: 5,
      subject: { namespaces: ALL, pods: sel({ app: 'cache' }) },
      ingress: [{ action: 'Accept', peers: [cpPods(ALL, sel({ app: 'web' }))] }],
    }),
  ],
});

describe('recompile work for a single-pod change', () => {
  it('a pod relabelled to a new identity takes the pod path: the new identity gets the lowest free number, only the sets it joins change and only the tables reading them are rebuilt', () => {
    const init = initialState(world);
    if (!init.ok) throw new Error(init.error.message);
    const p = world.pods[7];
    if (p === undefined) throw new Error('no pod');
    // pods[7] (a web/db pod of ns0 after the builder's sort) becomes an "api"
    // pod: ns0 had none, so a new pod identity.
    const changed = applyChange(world, {
      kind: 'upsertPod',
      pod: { ...p, labels: { app: 'api', extra: 'x' } },
    });
    const r = recompile(init.state, changed);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.work.path).toBe('pods');
    expect(r.work.podsRecomputed).toBe(1);
    // the api matcher of the db policies (api pods of any namespace) gains the
    // new identity; the web and the namespace-wide sets stay as they were
    expect(r.work.matchersUpdated).toBe(1);
    // only the tables reading the api set are rebuilt: the db ingress tables
    // (db pods live in ns0, ns2, ns4)
    expect(r.rebuiltTables).toBe(3);
    // they only gain the new identity's keys: patched in place, not replaced
    expect(r.delta.tables.replace.length).toBe(0);
    expect(r.delta.tables.patch.length).toBe(3);
    const used = new Set(init.state.compiled.allocation.identities.values());
    let lowest = 1;
    while (used.has(lowest) || lowest < Math.min(...used)) lowest++;
    const id = r.state.compiled.encoded.endpoints.find((e) => e.endpoint === podId(p))?.identity;
    expect(id).toBe(lowest);
    for (const t of r.delta.tables.patch) {
      expect(t.remove).toEqual([]);
      expect(t.insert.length).toBeGreaterThan(0);
      expect(new Set(t.insert.map((e) => keyIdentity(e.key)))).toEqual(new Set([lowest]));
    }
    const full = compile(changed, { previous: init.state.compiled.allocation });
    if (!full.ok) throw new Error(full.error.message);
    expect(plainMaps(r.state.compiled.encoded)).toEqual(plainMaps(full.compiled.encoded));
    expect(plainMaps(r.state.compiled.meta)).toEqual(plainMaps(full.compiled.meta));
    expect(plainMaps(r.state.compiled.allocation)).toEqual(plainMaps(full.compiled.allocation));
    // and back: the identity vanishes, its number is free again, the table is as it was
    const back = recompile(r.state, applyChange(changed, { kind: 'upsertPod', pod: p }));
    if (!back.ok) throw new Error(back.error.message);
    expect(back.work.path).toBe('pods');
    expect(plainMaps(back.state.compiled.encoded)).toEqual(plainMaps(init.state.compiled.encoded));
    // the same three tables lose exactly the keys they gained
    expect(back.delta.tables.replace).toEqual([]);
    expect(back.delta.tables.patch.map((t) => [t.table.table, t.remove.length])).toEqual(
      r.delta.tables.patch.map((t) => [t.table.table, t.insert.length]),
    );
    expect(plainMaps(back.state.compiled.allocation)).toEqual(
      plainMaps(init.state.compiled.allocation),
    );
  });

  it('a pod relabelled to an existing identity takes the pod path: one pod recomputed, no table or set touched, the delta is its own entries', () => {
    const init = initialState(world);
    if (!init.ok) throw new Error(init.error.message);
    const p = world.pods[7];
    const twin = world.pods.find(
      (q) => q.namespace === p?.namespace && q.labels['app'] !== p?.labels['app'],
    );
    if (p === undefined || twin === undefined) throw new Error('no pods');
    const changed = applyChange(world, { kind: 'upsertPod', pod: { ...p, labels: twin.labels } });
    const r = recompile(init.state, changed);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.work.path).toBe('pods');
    expect(r.work.podsRecomputed).toBe(1);
    expect(r.work.matchersEvaluated + r.work.matchersUpdated).toBe(0);
    expect(r.rebuiltTables).toBe(0);
    expect(r.delta.tables.replace.length + r.delta.tables.remove.length).toBe(0);
    expect(r.delta.endpoints.upsert.map((e) => e.endpoint)).toEqual([podId(p)]);
    expect(r.delta.endpoints.remove).toEqual([]);
    expect(r.delta.ipcache.upsert.length).toBe(1);
    expect(r.delta.ipcache.remove.length).toBe(0);
    const full = compile(changed, { previous: init.state.compiled.allocation });
    if (!full.ok) throw new Error(full.error.message);
    expect(plainMaps(r.state.compiled.encoded)).toEqual(plainMaps(full.compiled.encoded));
    expect(plainMaps(r.state.compiled.meta)).toEqual(plainMaps(full.compiled.meta));
    // and the next change from this state takes it again (the index carries over)
    const back = recompile(r.state, applyChange(changed, { kind: 'upsertPod', pod: p }));
    if (!back.ok) throw new Error(back.error.message);
    expect(back.work.path).toBe('pods');
    expect(plainMaps(back.state.compiled.encoded)).toEqual(plainMaps(init.state.compiled.encoded));
    // the same three tables lose exactly the keys they gained
    expect(back.delta.tables.replace).toEqual([]);
    expect(back.delta.tables.patch.map((t) => [t.table.table, t.remove.length])).toEqual(
      r.delta.tables.patch.map((t) => [t.table.table, t.insert.length]),
    );
  });

  it('a single-policy change takes the policy path: only the tables of its subjects are rebuilt, no endpoint or ipcache entry changes', () => {
    const init = initialState(world);
    if (!init.ok) throw new Error(init.error.message);
    // ns0/db isolates the db pods of ns0 for ingress: one table (their ingress class).
    const changed = applyChange(world, {
      kind: 'upsertNetworkPolicy',
      policy: np('ns0/db', {
        podSelector: sel({ app: 'db' }),
        ingress: [{ peers: [npPods(sel({ app: 'api' }), ALL)], ports: [tcp(5433)] }],
      }),
    });
    const r = recompile(init.state, changed);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.work.path).toBe('policies');
    // the peer is the same matcher as before: no set evaluated
    expect(r.work.matchersEvaluated).toBe(0);
    expect(r.rebuiltTables).toBe(1);
    const dbIngress = init.state.compiled.encoded.endpoints.filter((e) =>
      e.endpoint.includes('/ns0/'),
    );
    const dbTables = new Set(
      [...init.state.compiled.meta.tables.values()]
        .filter((m) => m.subject.includes('/ns0/db'))
        .map((m) => m.table),
    );
    expect(dbTables.size).toBe(1);
    expect(r.delta.tables.replace.map((t) => t.table)).toEqual([...dbTables]);
    expect(r.delta.tables.remove).toEqual([]);
    expect(r.delta.endpoints.upsert.length + r.delta.endpoints.remove.length).toBe(0);
    expect(r.delta.ipcache.upsert.length + r.delta.ipcache.remove.length).toBe(0);
    expect(dbIngress.length).toBeGreaterThan(0);
    const full = compile(changed, { previous: init.state.compiled.allocation });
    if (!full.ok) throw new Error(full.error.message);
    expect(plainMaps(r.state.compiled.encoded)).toEqual(plainMaps(full.compiled.encoded));
    expect(plainMaps(r.state.compiled.meta)).toEqual(plainMaps(full.compiled.meta));
  });

  it('a policy change with a new peer evaluates that one set; pods move to another class (member counts follow); the general path follows correctly', () => {
    const init = initialState(world);
    if (!init.ok) throw new Error(init.error.message);
    // ns0/db now also selects the web pods and admits web pods (a new set).
    const changed = applyChange(world, {
      kind: 'upsertNetworkPolicy',
      policy: np('ns0/db', {
        podSelector: {
          matchLabels: {},
          matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'web'] }],
        },
        ingress: [{ peers: [npPods(sel({ app: 'web' }), ALL)], ports: [tcp(5432)] }],
      }),
    });
    const r = recompile(init.state, changed);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.work.path).toBe('policies');
    expect(r.work.matchersEvaluated).toBe(1);
    // the ns0 web pods join the db pods' ingress class (the same policies select
    // them now): that table is rebuilt; the class they leave keeps the ns3 pods
    expect(r.rebuiltTables).toBe(1);
    expect(r.delta.tables.remove).toEqual([]);
    const members = (s: typeof init.state, sub: string): number =>
      [...s.compiled.meta.tables.values()].find((m) => m.subject === sub)?.members ?? 0;
    const left = 'Ingress|default|A:ClusterNetworkPolicy/default/team-t0|N:|B:|ports:';
    const joined =
      'Ingress|default|A:ClusterNetworkPolicy/default/team-t0|N:NetworkPolicy/default/ns0/db|B:|ports:';
    const movedPods = r.delta.endpoints.upsert.length;
    expect(members(r.state, left)).toBe(members(init.state, left) - movedPods);
    expect(members(r.state, joined)).toBe(members(init.state, joined) + movedPods);
    expect(r.delta.endpoints.upsert.length).toBeGreaterThan(0);
    expect(r.delta.endpoints.upsert.every((e) => e.endpoint.includes('/ns0/'))).toBe(true);
    const full = compile(changed, { previous: init.state.compiled.allocation });
    if (!full.ok) throw new Error(full.error.message);
    expect(plainMaps(r.state.compiled.encoded)).toEqual(plainMaps(full.compiled.encoded));
    expect(plainMaps(r.state.compiled.allocation)).toEqual(plainMaps(full.compiled.allocation));
    // a namespace change next (the general path) from this state equals the full compile too
    const ns = applyChange(changed, {
      kind: 'upsertNamespace',
      namespace: namespace('ns0', { team: 't2' }),
    });
    const g = recompile(r.state, ns);
    if (!g.ok) throw new Error(g.error.message);
    expect(g.work.path).toBe('general');
    const full2 = compile(ns, { previous: r.state.compiled.allocation });
    if (!full2.ok) throw new Error(full2.error.message);
    expect(g.state.compiled.encoded).toEqual(full2.compiled.encoded);
  });
});
