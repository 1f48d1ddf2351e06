import { describe, expect, it } from 'vitest';
import {
  buildWorld,
  cp,
  cpNetworks,
  ALL,
  ipBlock,
  node,
  np,
  npPods,
  pod,
  sel,
  tcp,
} from '../../../test/support/world-builder.js';
import { decodeIpcacheKey, decodeIpcacheValue, decodePolicyKey } from '../encode/codec.js';
import { PAL } from '../encode/layout.js';
import { compile, type Compiled } from './compile.js';
import { initialState, recompile } from './incremental.js';

function ok(r: ReturnType<typeof compile>): Compiled {
  if (!r.ok) throw new Error(r.error.message);
  return r.compiled;
}

const parts = {
  pods: [
    pod('prod/web-1', { labels: { app: 'web', hash: 'x1' }, ip: '10.0.0.1', node: 'n1' }),
    pod('prod/web-2', { labels: { app: 'web', hash: 'x2' }, ip: '10.0.0.2', node: 'n1' }),
    pod('prod/db', { labels: { app: 'db' }, ips: ['10.0.0.3', 'fd00::3'], node: 'n1' }),
  ],
  nodes: [node('n1', { ip: '192.168.0.1' })],
  networkPolicies: [
    np('prod/db', {
      podSelector: sel({ app: 'db' }),
      ingress: [{ peers: [npPods(sel({ app: 'web' }))], ports: [tcp(5432), tcp(6000)] }],
    }),
  ],
  clusterPolicies: [
    cp('block', {
      subject: { namespaces: ALL, pods: ALL },
      egress: [{ action: 'Deny', peers: [cpNetworks('10.0.0.0/8')], ports: [tcp(22)] }],
    }),
  ],
};
const world = buildWorld(parts);

describe('identities', () => {
  it('pods that differ only in label keys no selector uses share an identity', () => {
    const c = ok(compile(world));
    const id = (e: string): number =>
      c.encoded.endpoints.find((x) => x.endpoint === e)?.identity as number;
    expect(id('default/prod/web-1')).toBe(id('default/prod/web-2'));
    expect(id('default/prod/web-1')).not.toBe(id('default/prod/db'));
    expect(id('default/prod/web-1')).toBeGreaterThanOrEqual(PAL.ID_FIRST_ALLOCATED);
  });
  it('a dual-stack pod has one identity; its addresses in different policy CIDRs carry different CIDR identities', () => {
    const c = ok(compile(world));
    const byAddr = new Map(
      c.encoded.ipcache.map((e) => {
        const k = decodeIpcacheKey(e.key);
        return [
          Buffer.from(k.addr).toString('hex') + '/' + k.prefixlen,
          decodeIpcacheValue(e.value),
        ];
      }),
    );
    const v4 = byAddr.get('00000000000000000000ffff0a000003/128');
    const v6 = byAddr.get('fd000000000000000000000000000003/128');
    expect(v4).toBeDefined();
    expect(v6).toBeDefined();
    expect(v4?.identity).toBe(v6?.identity);
    expect(v4?.cidrIdentity).toBeGreaterThanOrEqual(PAL.ID_FIRST_ALLOCATED);
    expect(v6?.cidrIdentity).toBe(0);
    // the policy prefix 10.0.0.0/8 itself, IPv4-mapped: /96+8, identity WORLD
    expect(byAddr.get('00000000000000000000ffff0a000000/104')).toEqual({
      identity: PAL.ID_WORLD,
      nsIdentity: 0,
      cidrIdentity: v4?.cidrIdentity,
      nodeId: 0,
      flags: 0,
    });
    expect(byAddr.get('00000000000000000000ffffc0a80001/128')?.flags).toBe(PAL.IPC_F_NODE);
  });
  it('an unchanged endpoint keeps its identity when others appear (stable numbering)', () => {
    const a = ok(compile(world));
    const more = buildWorld({
      ...parts,
      pods: [...parts.pods, pod('prod/aaa', { labels: { app: 'aaa' }, ip: '10.0.0.9' })],
    });
    const b = ok(compile(more, { previous: a.allocation }));
    for (const e of a.encoded.endpoints)
      expect(b.encoded.endpoints.find((x) => x.endpoint === e.endpoint)?.identity).toBe(e.identity);
  });
  it('two endpoints with one address is an input error, not a crash', () => {
    const r = compile(
      buildWorld({ pods: [pod('a/x', { ip: '10.0.0.1' }), pod('b/y', { ip: '10.0.0.1' })] }),
    );
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.error).toMatchObject({
        kind: 'input',
        message: expect.stringMatching(/10\.0\.0\.1 is used by both/),
      });
  });
  it('an IPv6 policy prefix covering the IPv4-mapped block gets an explicit WORLD entry for IPv4', () => {
    const w = buildWorld({
      pods: [pod('a/x', { ip: '10.0.0.1' })],
      networkPolicies: [np('a/p', { ingress: [{ peers: [ipBlock('::/0')] }] })],
    });
    const c = ok(compile(w));
    const keys = c.encoded.ipcache.map((e) => [
      decodeIpcacheKey(e.key).prefixlen,
      decodeIpcacheValue(e.value).identity,
    ]);
    expect(keys).toContainEqual([96, PAL.ID_WORLD]);
    expect(keys).toContainEqual([0, expect.any(Number)]);
  });
});

describe('capacity', () => {
  it('a table over its limit is an error naming the table, the count and the limit', () => {
    const r = compile(world, { limits: { tableEntries: 1 } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toMatchObject({ kind: 'capacity', map: 'policy-table', limit: 1 });
    if (r.error.kind === 'capacity') {
      expect(r.error.count).toBeGreaterThan(1);
      expect(r.error.subject).toMatch(/^table \d+ \((Egress|Ingress)\|/);
      expect(r.error.message).toMatch(
        /needs \d+ entries, limit 1; the previous tables stay in force/,
      );
    }
  });
  it('ipcache, cookies, tables and per-node endpoints have limits too', () => {
    for (const [limits, map] of [
      [{ ipcache: 2 }, 'ipcache'],
      [{ cookies: 1 }, 'cookies'],
      [{ tables: 1 }, 'policy'],
      [{ endpoints: 2 }, 'endpoints'],
    ] as const) {
      const r = compile(world, { limits });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatchObject({ kind: 'capacity', map });
    }
    const e = compile(world, { limits: { endpoints: 2 } });
    if (!e.ok && e.error.kind === 'capacity')
      expect(e.error).toMatchObject({ subject: 'node node:default/n1', count: 3, limit: 2 });
  });
  it('a recompile that would overflow returns the error and the previous state stays usable', () => {
    const init = initialState(world, { limits: { tableEntries: 100 } });
    if (!init.ok) throw new Error(init.error.message);
    const big = buildWorld({
      ...parts,
      networkPolicies: [
        ...parts.networkPolicies,
        np('prod/many', {
          podSelector: sel({ app: 'db' }),
          ingress: Array.from({ length: 150 }, (_, i) => ({
            peers: [npPods(sel({ app: 'web' }))],
            ports: [tcp(1000 + 2 * i)],
          })),
        }),
      ],
    });
    const r = recompile(init.state, big);
    expect(r.ok).toBe(false);
    const again = recompile(init.state, world);
    expect(again.ok).toBe(true);
    if (again.ok) expect(again.delta.tables.replace).toHaveLength(0);
  });
});

describe('tables', () => {
  it('keys are LPM-valid: host bits beyond prefixlen are zero and prefixlen is 32..56', () => {
    const c = ok(compile(world));
    for (const t of c.encoded.tables) {
      for (const e of t.entries) {
        const k = decodePolicyKey(e.key);
        expect(k.prefixlen).toBeGreaterThanOrEqual(32);
        expect(k.prefixlen).toBeLessThanOrEqual(56);
        const keep = k.prefixlen - 32;
        const bits = (k.protocol << 16) | k.port;
        expect(bits & (keep === 0 ? 0xffffff : 0xffffff >> keep)).toBe(0);
      }
    }
  });
  it('cookies name the rules (cookie → RuleRef)', () => {
    const c = ok(compile(world));
    const refs = [...c.encoded.cookies.values()]
      .map((r) => `${r.kind}/${r.name}/${r.direction}/${r.ruleIndex}`)
      .sort();
    expect(refs).toEqual(['ClusterNetworkPolicy/block/Egress/0', 'NetworkPolicy/db/Ingress/0']);
    expect([...c.encoded.cookies.keys()].every((k) => k >= 1)).toBe(true);
  });
});

describe('bad input', () => {
  it('an empty world compiles to empty maps', () => {
    const c = ok(compile(buildWorld({})));
    expect(c.stats).toMatchObject({
      identities: 0,
      ipcacheEntries: 0,
      endpoints: 0,
      tables: 0,
      cookies: 0,
    });
  });
  it('a malformed CIDR or address is an input error naming it', () => {
    const bad = compile(
      buildWorld({
        pods: [pod('a/x', { ip: '10.0.0.1' })],
        networkPolicies: [np('a/p', { ingress: [{ peers: [ipBlock('10.0.0.0/33')] }] })],
      }),
    );
    expect(bad).toMatchObject({
      ok: false,
      error: { kind: 'input', message: expect.stringMatching(/not a CIDR: "10\.0\.0\.0\/33"/) },
    });
    const mapped = compile(buildWorld({ pods: [pod('a/x', { ip: '::ffff:10.0.0.1' })] }));
    expect(mapped).toMatchObject({
      ok: false,
      error: { kind: 'input', message: expect.stringMatching(/default\/a\/x: IPv4-mapped/) },
    });
  });
});
