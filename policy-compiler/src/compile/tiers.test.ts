/**
 * The v2 table format: no node in the class key (own-node exemption from the
 * endpoint's node number), namespace identities, and per-tier values resolved
 * across key kinds (pod / namespace / CIDR / ANY lookups).
 */
import { describe, expect, it } from 'vitest';
import {
  buildWorld,
  cp,
  cpNamespaces,
  cpPods,
  namespace,
  node,
  np,
  npPods,
  pod,
  sel,
  tcp,
  ALL,
} from '../../../test/support/world-builder.js';
import {
  decodeIpcacheKey,
  decodeIpcacheValue,
  decodePolicyKey,
  decodePolicyValue,
} from '../encode/codec.js';
import { PAL } from '../encode/layout.js';
import { evaluateMatrix, prepareWorld } from '../semantics/index.js';
import { compiledEngine } from '../simulate/engine.js';
import type { World } from '../model/world.js';
import { compile, type Compiled } from './compile.js';

function ok(r: ReturnType<typeof compile>): Compiled {
  if (!r.ok) throw new Error(r.error.message);
  return r.compiled;
}

/** Every probe of the reference matrix answered the same by the compiled engine. */
function sameAsReference(world: World, c: Compiled): void {
  const engine = compiledEngine(c.encoded, c.meta);
  const ref = evaluateMatrix(prepareWorld(world), {
    ports: [
      { protocol: 'TCP', port: 80 },
      { protocol: 'TCP', port: 443 },
    ],
    externals: ['203.0.113.7'],
  });
  expect(ref.length).toBeGreaterThan(0);
  for (const r of ref) expect(engine(r.probe)).toEqual(r);
}

const ipcacheOf = (c: Compiled, ip4: string): ReturnType<typeof decodeIpcacheValue> => {
  const want = `00000000000000000000ffff${ip4
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0'))
    .join('')}`;
  const e = c.encoded.ipcache.find((x) => {
    const k = decodeIpcacheKey(x.key);
    return k.prefixlen === 128 && Buffer.from(k.addr).toString('hex') === want;
  });
  if (e === undefined) throw new Error(`no ipcache entry for ${ip4}`);
  return decodeIpcacheValue(e.value);
};

describe('own-node exemption without the node in the class key', () => {
  const world = buildWorld({
    nodes: [node('n1', { ip: '192.168.0.1' }), node('n2', { ip: '192.168.0.2' })],
    pods: [
      pod('prod/a', { labels: { app: 'web' }, ip: '10.0.0.1', node: 'n1' }),
      pod('prod/b', { labels: { app: 'web' }, ip: '10.0.0.2', node: 'n2' }),
    ],
    networkPolicies: [np('prod/deny-all', { podSelector: ALL })],
  });
  const c = ok(compile(world));
  const ep = (id: string) => c.encoded.endpoints.find((e) => e.endpoint === id);

  it('two pods on different nodes with the same policies share one table', () => {
    const a = ep('default/prod/a');
    const b = ep('default/prod/b');
    expect(a?.ingressTable).toBe(b?.ingressTable);
    expect(a?.egressTable).toBe(b?.egressTable);
    expect(a?.nodeId).not.toBe(b?.nodeId);
    expect(a?.nodeId).toBeGreaterThan(0);
    expect((a?.flags ?? 0) & PAL.EP_F_INGRESS_ISOLATED).not.toBe(0);
    expect((a?.flags ?? 0) & PAL.EP_F_EGRESS_ISOLATED).toBe(0);
    // node addresses carry their node's number
    expect(ipcacheOf(c, '192.168.0.1').nodeId).toBe(a?.nodeId);
    expect(ipcacheOf(c, '192.168.0.2').nodeId).toBe(b?.nodeId);
    expect(ipcacheOf(c, '10.0.0.1').nodeId).toBe(0);
  });

  it('each allows ingress from its own node only', () => {
    const engine = compiledEngine(c.encoded, c.meta);
    const verdict = (from: string, to: string) =>
      engine({ from, to, protocol: 'TCP', port: 80 }).ingress.verdict;
    expect(verdict('node:default/n1', 'default/prod/a')).toBe('Allow');
    expect(verdict('node:default/n2', 'default/prod/a')).toBe('Deny');
    expect(verdict('node:default/n2', 'default/prod/b')).toBe('Allow');
    expect(verdict('node:default/n1', 'default/prod/b')).toBe('Deny');
    sameAsReference(world, c);
  });
});

describe('namespace identities', () => {
  const parts = {
    namespaces: [
      namespace('team-a', { team: 'a', unused: 'x' }),
      namespace('team-b', { team: 'a', unused: 'y' }),
      namespace('team-c', { team: 'c' }),
      namespace('prod'),
    ],
    pods: [
      pod('team-a/p', { ip: '10.0.1.1' }),
      pod('team-b/q', { ip: '10.0.2.1' }),
      pod('team-c/r', { ip: '10.0.3.1' }),
      pod('prod/db', { labels: { app: 'db' }, ip: '10.0.9.1' }),
    ],
    networkPolicies: [
      np('prod/db', {
        podSelector: sel({ app: 'db' }),
        ingress: [{ peers: [npPods(ALL, sel({ team: 'a' }))], ports: [tcp(80)] }],
      }),
    ],
  };

  it('namespaces with equal selected labels share one; the table has one namespace key, not one per pod', () => {
    const world = buildWorld(parts);
    const c = ok(compile(world));
    const a = ipcacheOf(c, '10.0.1.1');
    const b = ipcacheOf(c, '10.0.2.1');
    const r = ipcacheOf(c, '10.0.3.1');
    expect(a.nsIdentity).toBeGreaterThanOrEqual(PAL.ID_FIRST_ALLOCATED);
    expect(a.nsIdentity).toBe(b.nsIdentity); // "unused" is no selector's key
    expect(r.nsIdentity).not.toBe(a.nsIdentity);
    const db = c.encoded.endpoints.find((e) => e.endpoint === 'default/prod/db');
    const t = c.encoded.tables.find((x) => x.table === db?.ingressTable);
    const ids = new Set(t?.entries.map((e) => decodePolicyKey(e.key).identity));
    expect([...ids]).toEqual([a.nsIdentity]);
    sameAsReference(world, c);
  });

  it('relabelling a namespace moves its pods to another namespace identity; tables need not change', () => {
    const before = ok(compile(buildWorld(parts)));
    const relabelled = buildWorld({
      ...parts,
      namespaces: [
        namespace('team-a', { team: 'a' }),
        namespace('team-b', { team: 'a' }),
        namespace('team-c', { team: 'a' }),
        namespace('prod'),
      ],
    });
    const after = ok(compile(relabelled, { previous: before.allocation }));
    expect(ipcacheOf(after, '10.0.3.1').nsIdentity).toBe(ipcacheOf(before, '10.0.1.1').nsIdentity);
    expect(after.encoded.tables).toEqual(before.encoded.tables);
    const engine = compiledEngine(after.encoded, after.meta);
    expect(
      engine({ from: 'default/team-c/r', to: 'default/prod/db', protocol: 'TCP', port: 80 })
        .verdict,
    ).toBe('Allow');
    sameAsReference(relabelled, after);
  });
});

describe('per-tier resolution across key kinds', () => {
  // An Admin Pass on a namespace-wide peer (namespace key) hands over to the
  // NetworkPolicy tier, whose allow is on a pod key; an Admin Deny of a later
  // rank on the same pod must not win over the Pass.
  const world = buildWorld({
    namespaces: [namespace('front', { zone: 'dmz' }), namespace('prod')],
    pods: [
      pod('front/web', { labels: { app: 'web' }, ip: '10.0.1.1' }),
      pod('front/other', { labels: { app: 'other' }, ip: '10.0.1.2' }),
      pod('prod/db', { labels: { app: 'db' }, ip: '10.0.9.1' }),
    ],
    clusterPolicies: [
      cp('pass-dmz', {
        priority: 1,
        subject: { namespaces: sel({ 'kubernetes.io/metadata.name': 'prod' }), pods: ALL },
        ingress: [{ action: 'Pass', peers: [cpNamespaces(sel({ zone: 'dmz' }))] }],
      }),
      cp('deny-web', {
        priority: 2,
        subject: { namespaces: sel({ 'kubernetes.io/metadata.name': 'prod' }), pods: ALL },
        ingress: [{ action: 'Deny', peers: [cpPods(ALL, sel({ app: 'web' }))] }],
      }),
    ],
    networkPolicies: [
      np('prod/db', {
        podSelector: sel({ app: 'db' }),
        ingress: [{ peers: [npPods(sel({ app: 'web' }), ALL)], ports: [tcp(80)] }],
      }),
    ],
  });
  const c = ok(compile(world));

  it('the Pass is found under the namespace key and the NetworkPolicy allow under the pod key', () => {
    const db = c.encoded.endpoints.find((e) => e.endpoint === 'default/prod/db');
    const t = c.encoded.tables.find((x) => x.table === db?.ingressTable);
    const web = ipcacheOf(c, '10.0.1.1');
    const under = (identity: number) =>
      (t?.entries ?? [])
        .filter((e) => decodePolicyKey(e.key).identity === identity)
        .map((e) => decodePolicyValue(e.value).enforced);
    const nsValues = under(web.nsIdentity);
    expect(nsValues.length).toBeGreaterThan(0);
    for (const v of nsValues) {
      expect(v[PAL.TIER_ADMIN]).toMatchObject({ rank: 1, action: PAL.ACTION_PASS });
      expect(v[PAL.TIER_NETWORK_POLICY].rank).toBe(0);
    }
    const podValues = under(web.identity);
    expect(podValues.some((v) => v[PAL.TIER_NETWORK_POLICY].action === PAL.ACTION_ALLOW)).toBe(
      true,
    );
    expect(podValues.every((v) => v[PAL.TIER_ADMIN].action === PAL.ACTION_DENY)).toBe(true);
  });

  it('resolves to the NetworkPolicy allow on its port, isolation deny elsewhere, as the reference', () => {
    const engine = compiledEngine(c.encoded, c.meta);
    const at = (from: string, port: number) =>
      engine({ from, to: 'default/prod/db', protocol: 'TCP', port }).ingress;
    expect(at('default/front/web', 80)).toMatchObject({
      verdict: 'Allow',
      decidedBy: { kind: 'rule', action: 'Allow' },
    });
    expect(at('default/front/web', 443)).toMatchObject({
      verdict: 'Deny',
      decidedBy: { kind: 'default' },
    });
    expect(at('default/front/other', 80).verdict).toBe('Deny');
    sameAsReference(world, c);
  });
});
