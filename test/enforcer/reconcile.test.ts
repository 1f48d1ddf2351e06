// The reconcile loop against a recording applier: what it would write to the
// datapath and when. The real maps are exercised by the privileged agent
// end-to-end test; here the subject is the loop's decisions (debounce,
// reject-and-keep, status), which need no kernel.
import { describe, expect, it } from 'vitest';
import type { EncodedDelta, EncodedTables } from '../../policy-compiler/src/compiled.js';
import { Reconciler, type PolicyApplier } from '../../enforcer/src/reconcile/index.js';
import { makeSnapshot } from '../../enforcer/src/sources/index.js';
import { AgentMetrics } from '../../enforcer/src/metrics/index.js';
import { loadWorldFromTexts } from '../../policy-compiler/src/load/index.js';
import { compile, diffTables } from '../../policy-compiler/src/compile/index.js';

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** A delta as sorted text, so two deltas compare regardless of entry order. */
function comparableDelta(d: EncodedDelta): Record<string, string[]> {
  return {
    ipcacheUpsert: d.ipcache.upsert.map((e) => hexOf(e.key) + ':' + hexOf(e.value)).sort(),
    ipcacheRemove: d.ipcache.remove.map(hexOf).sort(),
    endpointsUpsert: d.endpoints.upsert
      .map((e) => [e.endpoint, e.identity, e.egressTable, e.ingressTable, e.flags, e.nodeId].join())
      .sort(),
    endpointsRemove: [...d.endpoints.remove].sort(),
    tablesReplace: d.tables.replace
      .map((t) => `${t.table}:` + t.entries.map((e) => hexOf(e.key) + hexOf(e.value)).join(','))
      .sort(),
    tablesPatch: d.tables.patch
      .map(
        (p) =>
          `${p.table.table}:+` +
          p.insert.map((e) => hexOf(e.key) + hexOf(e.value)).join(',') +
          '-' +
          p.remove.map(hexOf).join(','),
      )
      .sort(),
    tablesRemove: d.tables.remove.map(String).sort(),
  };
}

const ns = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
`;
const pod = (name: string, app: string, ip: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: shop, labels: {app: ${app}}}
spec: {nodeName: node-a, containers: [{name: c, ports: [{containerPort: 80}]}]}
status: {podIP: ${ip}}
`;
const np = (gen: number, port = 80) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop, generation: ${gen}}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}], ports: [{port: ${port}}]}]
`;
const badNp = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop, generation: 3}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: 70000}]}]
`;

function snap(files: Record<string, string>) {
  return makeSnapshot(Object.entries(files).map(([file, text]) => ({ file, text })));
}

class RecordingApplier implements PolicyApplier {
  readonly applied: EncodedTables[] = [];
  failNext: Error | undefined;
  applyFull(encoded: EncodedTables): { revision: number } {
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    this.applied.push(encoded);
    return { revision: this.applied.length };
  }
}

/** Also takes deltas: records which kind of sync each round used. */
class DeltaApplier extends RecordingApplier {
  readonly syncs: ('full' | 'delta')[] = [];
  readonly deltas: EncodedDelta[] = [];
  override applyFull(encoded: EncodedTables): { revision: number } {
    const r = super.applyFull(encoded);
    this.syncs.push('full');
    return r;
  }
  applyDelta(delta: EncodedDelta): { revision: number } {
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    this.syncs.push('delta');
    this.deltas.push(delta);
    return { revision: this.syncs.length };
  }
}

const IFINDEX: Record<string, number> = {
  'default/shop/web-1': 10,
  'default/shop/api-1': 11,
  'default/shop/db-1': 12,
};

function setup(limits?: { endpoints: number }, applier = new RecordingApplier()) {
  const metrics = new AgentMetrics({ processMetrics: false });
  const r = new Reconciler({
    nodeName: 'default/node-a',
    cluster: 'default',
    applier,
    ifindexOf: (id) => IFINDEX[id],
    metrics,
    debounceMs: 10_000, // flush() is called explicitly: no timing in these tests
    ...(limits ? { limits } : {}),
  });
  return { r, applier, metrics };
}

const base = {
  'ns.yaml': ns,
  'web.yaml': pod('web-1', 'web', '10.0.0.1'),
  'api.yaml': pod('api-1', 'api', '10.0.0.2'),
};

describe('reconcile loop', () => {
  it('enforces a valid snapshot and reports each policy with its entries', async () => {
    const { r, applier, metrics } = setup();
    expect(r.isEnforced()).toBe(false);
    r.submit(snap({ ...base, 'np.yaml': np(1) }));
    await r.flush();
    expect(applier.applied).toHaveLength(1);
    expect(r.isEnforced()).toBe(true);
    const s = r.status();
    expect(s.datapathRevision).toBe(1);
    expect(s.lastError).toBeNull();
    expect(s.policies).toEqual([
      expect.objectContaining({
        kind: 'NetworkPolicy',
        namespace: 'shop',
        name: 'web-in',
        revision: '1',
        enforcedRevision: '1',
        state: 'enforced',
        error: null,
      }),
    ]);
    expect(s.policies[0]?.entries).toBeGreaterThan(0);
    expect(await metrics.text()).toContain('palisade_policy_realized{state="enforced"} 1');
    expect(await metrics.text()).toContain('palisade_policy_compile_seconds_count 1');
  });

  it('debounces: of a burst only the newest snapshot is compiled and applied', async () => {
    const { r, applier } = setup();
    for (let g = 1; g <= 5; g++) r.submit(snap({ ...base, 'np.yaml': np(g) }));
    await r.flush();
    expect(applier.applied).toHaveLength(1);
    expect(r.status().policies[0]?.enforcedRevision).toBe('5');
    r.stop();
  });

  it('an invalid update is rejected with its error; the previous policy stays enforced', async () => {
    const { r, applier } = setup();
    r.submit(snap({ ...base, 'np.yaml': np(1) }));
    await r.flush();
    r.submit(snap({ ...base, 'np.yaml': badNp }));
    await r.flush();
    expect(applier.applied).toHaveLength(1); // nothing new written
    const s = r.status();
    expect(s.lastError).toMatch(
      /^invalid input, previous policy stays enforced: np\.yaml:\d+:\d+: spec\.ingress\[0\]\.ports\[0\]\.port/,
    );
    expect(s.policies).toHaveLength(1);
    expect(s.policies[0]).toMatchObject({ name: 'web-in', enforcedRevision: '1', state: 'error' });
    expect(r.isEnforced()).toBe(true);
    // Fixing the file recovers.
    r.submit(snap({ ...base, 'np.yaml': np(4, 8080) }));
    await r.flush();
    expect(applier.applied).toHaveLength(2);
    expect(r.status()).toMatchObject({
      lastError: null,
      policies: [{ enforcedRevision: '4', state: 'enforced' }],
    });
  });

  it('over capacity: refused with the compiler error, old tables stay', async () => {
    const { r, applier } = setup({ endpoints: 2 });
    r.submit(snap({ ...base, 'np.yaml': np(1) }));
    await r.flush();
    r.submit(snap({ ...base, 'np.yaml': np(2), 'db.yaml': pod('db-1', 'db', '10.0.0.3') }));
    await r.flush();
    expect(applier.applied).toHaveLength(1);
    expect(r.status().lastError).toMatch(
      /^compile failed, previous policy stays enforced: endpoints map/,
    );
    expect(r.status().policies[0]).toMatchObject({
      revision: '2',
      enforcedRevision: '1',
      state: 'error',
    });
  });

  it('a failed datapath sync is reported and retried with the next snapshot', async () => {
    const { r, applier } = setup();
    applier.failNext = new Error('EPERM: bpf_map_update_elem');
    r.submit(snap({ ...base, 'np.yaml': np(1) }));
    await r.flush();
    expect(r.isEnforced()).toBe(false);
    expect(r.status().lastError).toBe(
      'datapath sync failed, previous policy stays enforced: EPERM: bpf_map_update_elem',
    );
    expect(r.status().policies[0]).toMatchObject({ enforcedRevision: null, state: 'error' });
    r.resync();
    await r.flush();
    expect(r.isEnforced()).toBe(true);
    expect(applier.applied).toHaveLength(1);
  });

  it('incremental: unchanged endpoints keep their identities across rounds', async () => {
    const { r, applier } = setup();
    r.submit(snap({ ...base, 'np.yaml': np(1) }));
    await r.flush();
    r.submit(snap({ ...base, 'np.yaml': np(1), 'api.yaml': pod('api-1', 'api-v2', '10.0.0.2') }));
    await r.flush();
    expect(applier.applied).toHaveLength(2);
    const ident = (e: EncodedTables, id: string) =>
      e.endpoints.find((x) => x.endpoint === id)?.identity;
    expect(ident(applier.applied[1] as EncodedTables, 'default/shop/web-1')).toBe(
      ident(applier.applied[0] as EncodedTables, 'default/shop/web-1'),
    );
    // An identical snapshot is not re-applied.
    r.submit(snap({ ...base, 'np.yaml': np(1), 'api.yaml': pod('api-1', 'api-v2', '10.0.0.2') }));
    await r.flush();
    expect(applier.applied).toHaveLength(2);
  });

  it('syncs in full first, then only the delta; in full again after a resync or a failed apply', async () => {
    const applier = new DeltaApplier();
    const { r } = setup(undefined, applier);
    r.submit(snap({ ...base, 'np.yaml': np(1) }));
    await r.flush();
    r.submit(snap({ ...base, 'np.yaml': np(2, 8080) }));
    await r.flush();
    expect(applier.syncs).toEqual(['full', 'delta']);
    // A port change rewrites the subject's table; endpoints and ipcache are untouched.
    const d = applier.deltas[0] as EncodedDelta;
    expect(d.tables.replace.length).toBeGreaterThan(0);
    expect(d.endpoints.upsert).toEqual([]);
    expect(d.ipcache.upsert).toEqual([]);
    expect(r.status().lastRound).toMatchObject({ sync: 'delta', outcome: 'applied' });
    r.resync(); // interfaces changed: ifindexOf answers differently
    await r.flush();
    expect(applier.syncs).toEqual(['full', 'delta', 'full']);
    applier.failNext = new Error('ENOSPC');
    r.submit(snap({ ...base, 'np.yaml': np(3) }));
    await r.flush();
    expect(r.status().lastRound).toMatchObject({ sync: 'delta', outcome: 'rejected' });
    r.submit(snap({ ...base, 'np.yaml': np(4) }));
    await r.flush();
    expect(applier.syncs).toEqual(['full', 'delta', 'full', 'full']);
    expect(r.status()).toMatchObject({ lastError: null, lastRound: { sync: 'full' } });
  });

  it('pod-only and policy-only changes take the compiler fast paths; the pod delta is the full diff', async () => {
    const applier = new DeltaApplier();
    const { r } = setup(undefined, applier);
    r.submit(snap({ ...base, 'np.yaml': np(1) }));
    await r.flush();
    expect(r.status().lastRound?.compilePath).toBe('full');
    // api-2 has api-1's labels: no new identity or class, so only its entries change.
    r.submit(snap({ ...base, 'np.yaml': np(1), 'api2.yaml': pod('api-2', 'api', '10.0.0.3') }));
    await r.flush();
    expect(r.status().lastRound).toMatchObject({
      compilePath: 'pods',
      sync: 'delta',
      outcome: 'applied',
    });
    const d = applier.deltas[0] as EncodedDelta;
    expect(d.endpoints.upsert.map((e) => e.endpoint)).toEqual(['default/shop/api-2']);
    expect(d.ipcache.upsert).toHaveLength(1);
    expect(d.tables.replace).toEqual([]);
    // The delta the compiler gave equals diffing a from-scratch compile of both snapshots.
    const fresh = (files: Record<string, string>) => {
      const c = compile(loadWorldFromTexts(snap(files).inputs).world, { localCluster: 'default' });
      if (!c.ok) throw new Error(c.error.message);
      return c.compiled;
    };
    const before = fresh({ ...base, 'np.yaml': np(1) });
    const after = compile(
      loadWorldFromTexts(
        snap({ ...base, 'np.yaml': np(1), 'api2.yaml': pod('api-2', 'api', '10.0.0.3') }).inputs,
      ).world,
      { localCluster: 'default', previous: before.allocation },
    );
    if (!after.ok) throw new Error(after.error.message);
    expect(comparableDelta(d)).toEqual(
      comparableDelta(diffTables(before.encoded, after.compiled.encoded)),
    );
    // A policy change takes the policy path; a namespace relabel the general one.
    r.submit(
      snap({ ...base, 'np.yaml': np(2, 8080), 'api2.yaml': pod('api-2', 'api', '10.0.0.3') }),
    );
    await r.flush();
    expect(r.status().lastRound).toMatchObject({ compilePath: 'policies', sync: 'delta' });
    r.submit(
      snap({
        ...base,
        'ns.yaml': ns.replace('{name: shop}', '{name: shop, labels: {team: a}}'),
        'np.yaml': np(2, 8080),
        'api2.yaml': pod('api-2', 'api', '10.0.0.3'),
      }),
    );
    await r.flush();
    expect(r.status().lastRound).toMatchObject({ compilePath: 'general', sync: 'delta' });
    expect(applier.syncs).toEqual(['full', 'delta', 'delta', 'delta']);
  });

  it('reports the stages of each round in status and palisade_reconcile_stage_seconds', async () => {
    const { r, metrics } = setup();
    r.submit(snap({ ...base, 'np.yaml': np(1) }));
    await r.flush();
    const t = r.status().lastRound;
    expect(t).not.toBeNull();
    expect(Object.keys(t?.stages ?? {}).sort()).toEqual(
      ['apply', 'compile', 'load', 'publish', 'queued'].sort(),
    );
    expect(t?.finishedAtMs).toBeGreaterThanOrEqual(t?.submittedAtMs ?? Infinity);
    r.submit(snap({ ...base, 'np.yaml': badNp }));
    await r.flush();
    expect(Object.keys(r.status().lastRound?.stages ?? {}).sort()).toEqual(['load', 'queued']);
    const text = await metrics.text();
    for (const stage of ['queued', 'load'])
      expect(text).toContain(`palisade_reconcile_stage_seconds_count{stage="${stage}"} 2`);
    for (const stage of ['compile', 'apply', 'publish'])
      expect(text).toContain(`palisade_reconcile_stage_seconds_count{stage="${stage}"} 1`);
  });

  it("the endpoints gauge counts this node's endpoints, not the world's", async () => {
    const { r, metrics } = setup();
    // db-1 is in the world but has no local interface (another node's, as far as ifindexOf knows)
    r.submit(snap({ ...base, 'np.yaml': np(1), 'db.yaml': pod('db-9', 'db', '10.0.0.9') }));
    await r.flush();
    const text = await metrics.text();
    expect(text).toContain('palisade_policy_map_entries{map="endpoints"} 2');
    expect(text).toContain('palisade_endpoints 2');
  });

  it('an unchanged endpoint on a new interface (pod re-created) is synced in full', async () => {
    const applier = new DeltaApplier();
    const ifindex: Record<string, number> = { ...IFINDEX };
    const r = new Reconciler({
      nodeName: 'default/node-a',
      cluster: 'default',
      applier,
      ifindexOf: (id) => ifindex[id],
      debounceMs: 10_000,
    });
    r.submit(snap({ ...base, 'np.yaml': np(1) }));
    await r.flush();
    ifindex['default/shop/api-1'] = 99;
    r.submit(snap({ ...base, 'np.yaml': np(2, 8080) }));
    await r.flush();
    r.submit(snap({ ...base, 'np.yaml': np(3, 8081) }));
    await r.flush();
    expect(applier.syncs).toEqual(['full', 'full', 'delta']);
  });

  it('uses a load the caller already did only when it is of the submitted snapshot', async () => {
    const { r, applier } = setup();
    const s1 = snap({ ...base, 'np.yaml': np(1) });
    const other = snap({ ...base, 'np.yaml': np(1, 8080) });
    // a load of another snapshot is ignored: the submitted one is loaded
    r.submit(s1, { of: other, loaded: loadWorldFromTexts(other.inputs) });
    await r.flush();
    expect(r.status().policies[0]).toMatchObject({ enforcedRevision: '1', state: 'enforced' });
    // a load of the same content is used as is (here: deliberately a different world, to see it)
    const s2 = snap({ ...base, 'np.yaml': np(2) });
    const same = makeSnapshot([...s2.inputs]);
    const decoy = loadWorldFromTexts(snap({ ...base, 'np.yaml': np(7) }).inputs);
    r.submit(s2, { of: same, loaded: decoy });
    await r.flush();
    expect(r.status().policies[0]).toMatchObject({ revision: '7', enforcedRevision: '7' });
    expect(applier.applied).toHaveLength(2);
  });
});
