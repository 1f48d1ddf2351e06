/**
 * A single-pod change reuses the compiled policies and classes and touches
 * only the matcher sets whose identities changed; the result still equals
 * the full compile byte for byte (test/differential/incremental.test.ts
 * checks that over random change sequences).
 */
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
  it('reuses policies and classes, evaluates no matcher from scratch, updates only sets the new identity joins', () => {
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
    expect(r.work.policiesReused).toBe(true);
    // a new identity: the pod-only path does not take it (docs/compiler.md)
    expect(r.work.path).toBe('general');
    expect(r.work.matchersEvaluated).toBe(0);
    // the api matcher gains the new identity; the web and the namespace-wide
    // sets are the same objects as before
    expect(r.work.matchersUpdated).toBe(1);
    expect(r.work.matchersReused).toBeGreaterThanOrEqual(1);
    // only the tables reading the api set are rebuilt: the db ingress tables
    // (db pods live in ns0, ns2, ns4)
    expect(r.rebuiltTables).toBe(3);
    expect(r.reusedTables).toBeGreaterThan(0);
    const full = compile(changed, { previous: init.state.compiled.allocation });
    if (!full.ok) throw new Error(full.error.message);
    expect(r.state.compiled.encoded).toEqual(full.compiled.encoded);
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
    expect(r.state.compiled.encoded).toEqual(full.compiled.encoded);
    expect(r.state.compiled.meta).toEqual(full.compiled.meta);
    // and the next change from this state takes it again (the index carries over)
    const back = recompile(r.state, applyChange(changed, { kind: 'upsertPod', pod: p }));
    if (!back.ok) throw new Error(back.error.message);
    expect(back.work.path).toBe('pods');
    expect(back.state.compiled.encoded).toEqual(init.state.compiled.encoded);
  });

  it('a policy change compiles the policies and matchers afresh (and still equals the full compile)', () => {
    const init = initialState(world);
    if (!init.ok) throw new Error(init.error.message);
    const changed = applyChange(world, {
      kind: 'upsertNetworkPolicy',
      policy: np('ns1/db', {
        podSelector: sel({ app: 'db' }),
        ingress: [{ peers: [npPods(sel({ app: 'web' }), ALL)], ports: [tcp(5432)] }],
      }),
    });
    const r = recompile(init.state, changed);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.work.policiesReused).toBe(false);
    expect(r.work.matchersEvaluated).toBeGreaterThan(0);
    const full = compile(changed, { previous: init.state.compiled.allocation });
    if (!full.ok) throw new Error(full.error.message);
    expect(r.state.compiled.encoded).toEqual(full.compiled.encoded);
  });
});
