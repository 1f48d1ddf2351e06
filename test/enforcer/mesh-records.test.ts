/**
 * Mesh store records → loader documents: the parsing is strict, bounded and
 * total (never throws), own-cluster records are ignored with a reason, and
 * what a publisher writes for a pod reads back as the same pod.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadWorldFromTexts } from '../../policy-compiler/src/load/index.js';
import {
  DEFAULT_MESH_RECORD_LIMITS,
  parseMeshRecord,
} from '../../enforcer/src/sources/mesh-store-records.js';
import {
  desiredEndpoints,
  diffEndpoints,
} from '../../enforcer/src/sources/mesh-store-publisher.js';
import { endpointKey, parseStoreKey } from '../../tunnel/src/mesh-store.js';

const buf = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const EP = endpointKey('west', 'shop', 'web-1');
const endpoint = {
  namespace: 'shop',
  name: 'web-1',
  uid: 'u-1',
  node: 'w1',
  labels: { app: 'web' },
  namespaceLabels: { 'kubernetes.io/metadata.name': 'shop', team: 'a' },
  ips: ['10.78.0.5', 'fd78::5'],
  ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
};

const WEST_WORLD = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}, annotations: {palisade.dev/cluster: west}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, uid: u-1, labels: {app: web}, annotations: {palisade.dev/cluster: west}}
spec:
  nodeName: w1
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status: {podIPs: [{ip: 10.78.0.5}, {ip: "fd78::5"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other-node, namespace: shop, annotations: {palisade.dev/cluster: west}}
spec: {nodeName: w2, containers: [{name: c}]}
status: {podIP: 10.78.0.6}
---
apiVersion: v1
kind: Pod
metadata: {name: host, namespace: shop, annotations: {palisade.dev/cluster: west}}
spec: {nodeName: w1, hostNetwork: true, containers: [{name: c}]}
status: {podIP: 192.0.2.9}
`;

describe('store keys', () => {
  it('parses the layout and nothing else', () => {
    expect(parseStoreKey(EP)).toEqual({
      kind: 'endpoint',
      cluster: 'west',
      namespace: 'shop',
      name: 'web-1',
    });
    expect(parseStoreKey('/palisade/clusters/west/cluster')).toEqual({
      kind: 'cluster',
      cluster: 'west',
    });
    expect(parseStoreKey('/palisade/policies/p')).toEqual({ kind: 'policy', name: 'p' });
    expect(parseStoreKey('/palisade/policies/a/b').kind).toBe('other');
    expect(parseStoreKey('/palisade/clusters/west/endpoints/shop').kind).toBe('other');
    expect(parseStoreKey('/palisade/clusters//cluster').kind).toBe('other');
  });
});

describe('parseMeshRecord', () => {
  it('an endpoint record becomes a Pod document of its cluster', () => {
    const r = parseMeshRecord(EP, buf(endpoint), 'east');
    expect(r.ok).toBe(true);
    if (r.ok !== true || r.record.kind !== 'endpoint') throw new Error('not an endpoint');
    expect(r.record.namespaceLabels).toEqual(endpoint.namespaceLabels);
    const w = loadWorldFromTexts([{ file: 'x', text: r.record.text }]);
    expect(w.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const p = w.world.pods[0]!;
    expect([p.cluster, p.namespace, p.name, p.ips, p.labels]).toEqual([
      'west',
      'shop',
      'web-1',
      ['10.78.0.5', 'fd78::5'],
      { app: 'web' },
    ]);
    expect(p.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
  });

  it('unnamed ports and the default protocol', () => {
    const r = parseMeshRecord(
      EP,
      buf({
        ...endpoint,
        ports: [{ containerPort: 80 }, { name: null, containerPort: 81, protocol: 'UDP' }],
      }),
      'east',
    );
    if (r.ok !== true) throw new Error(JSON.stringify(r));
    const p = loadWorldFromTexts([{ file: 'x', text: r.record.text }]).world.pods[0]!;
    expect(p.ports).toEqual([
      { name: null, containerPort: 80, protocol: 'TCP' },
      { name: null, containerPort: 81, protocol: 'UDP' },
    ]);
  });

  it('records of our own cluster, gateways and the epoch are ignored with a reason', () => {
    const own = parseMeshRecord(endpointKey('east', 'shop', 'a'), buf(endpoint), 'east');
    expect(own).toEqual({ ok: 'ignored', reason: expect.stringContaining('own cluster (east)') });
    expect(parseMeshRecord('/palisade/clusters/west/gateway', buf({}), 'east').ok).toBe('ignored');
    expect(parseMeshRecord('/palisade/mesh/epoch', buf({ epoch: 1 }), 'east').ok).toBe('ignored');
  });

  it.each([
    ['not JSON', '{nope', 'not JSON'],
    ['an array', [1], 'must be a JSON object'],
    ['a name that is not the key', { ...endpoint, name: 'other' }, 'do not match the key'],
    ['no IPs', { ...endpoint, ips: [] }, 'at least one address'],
    ['a bad IP', { ...endpoint, ips: ['10.0.0.300'] }, 'ips[0]: not an IP address'],
    ['a port out of range', { ...endpoint, ports: [{ containerPort: 70000 }] }, 'containerPort'],
    [
      'a bad protocol',
      { ...endpoint, ports: [{ containerPort: 1, protocol: 'ICMP' }] },
      'TCP, UDP or SCTP',
    ],
    ['a non-string label', { ...endpoint, labels: { a: 1 } }, 'labels.a: must be a string'],
    ['an invalid label key (loader)', { ...endpoint, labels: { 'bad key!': 'x' } }, 'labels'],
    ['an unknown field', { ...endpoint, extra: true }, 'extra: unknown field'],
    ['too many IPs', { ...endpoint, ips: Array(9).fill('10.0.0.1') }, 'more than 8'],
  ])('an endpoint with %s is a problem naming what is wrong', (_what, value, message) => {
    const r = parseMeshRecord(EP, buf(value), 'east');
    expect(r.ok).toBe(false);
    if (r.ok === false) expect(r.problem).toContain(message);
  });

  it('values over the size limit are not parsed', () => {
    const big = Buffer.alloc(DEFAULT_MESH_RECORD_LIMITS.maxRecordBytes + 1, 0x20);
    const r = parseMeshRecord(EP, big, 'east');
    expect(r).toEqual({
      ok: false,
      problem: expect.stringMatching(/bytes, limit 65536; not read/),
    });
    const pol = parseMeshRecord(
      '/palisade/policies/p',
      Buffer.alloc(DEFAULT_MESH_RECORD_LIMITS.maxPolicyBytes + 1, 0x20),
      'east',
    );
    expect(pol.ok).toBe(false);
  });

  it('a Cluster record becomes a Cluster document; a bad CIDR is the loader’s problem, reported', () => {
    const rec = {
      name: 'west',
      labels: { region: 'eu' },
      podCIDRs: ['10.78.0.0/16'],
      serviceCIDRs: [],
      nodeCIDRs: [],
      gateway: { endpoint: '192.0.2.2:51820' },
    };
    const r = parseMeshRecord('/palisade/clusters/west/cluster', buf(rec), 'east');
    if (r.ok !== true) throw new Error(JSON.stringify(r));
    const w = loadWorldFromTexts([{ file: 'x', text: r.record.text }]);
    expect(w.world.clusters[0]?.labels).toMatchObject({ region: 'eu' });
    const bad = parseMeshRecord(
      '/palisade/clusters/west/cluster',
      buf({ ...rec, podCIDRs: ['10.78.0.0/33'] }),
      'east',
    );
    expect(bad).toEqual({ ok: false, problem: expect.stringContaining('podCIDRs') });
  });

  it('policies: only MeshNetworkPolicy documents named like their key', () => {
    const mnp = {
      apiVersion: 'palisade.dev/v1alpha1',
      kind: 'MeshNetworkPolicy',
      metadata: { name: 'p' },
      spec: {},
    };
    expect(parseMeshRecord('/palisade/policies/p', buf(mnp), 'east').ok).toBe(true);
    const np = { ...mnp, kind: 'NetworkPolicy' };
    expect(parseMeshRecord('/palisade/policies/p', buf(np), 'east').ok).toBe(false);
    expect(parseMeshRecord('/palisade/policies/q', buf(mnp), 'east').ok).toBe(false);
  });

  it('law: any bytes under any key give a record, a reason or a problem, never a throw', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(
          EP,
          '/palisade/clusters/west/cluster',
          '/palisade/policies/p',
          '/palisade/x',
        ),
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
          fc.jsonValue().map((v) => buf(JSON.stringify(v) ?? 'null')),
          fc
            .record({
              namespace: fc.constant('shop'),
              name: fc.constant('web-1'),
              ips: fc.anything(),
              labels: fc.anything(),
              ports: fc.anything(),
            })
            .map((v) => buf(v)),
        ),
        (key, value) => {
          const r = parseMeshRecord(key, value, 'east');
          expect([true, false, 'ignored']).toContain(r.ok);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('publisher: desired records and diff', () => {
  const world = loadWorldFromTexts([{ file: 'w.yaml', text: WEST_WORLD }]).world;

  it('publishes the pods of its node with IPs, not hostNetwork ones, with namespace labels; they read back as the same pod', () => {
    const d = desiredEndpoints(world, 'west', 'w1');
    expect([...d.keys()]).toEqual([EP]);
    const r = parseMeshRecord(EP, Buffer.from(d.get(EP)!), 'east');
    if (r.ok !== true || r.record.kind !== 'endpoint') throw new Error(JSON.stringify(r));
    expect(r.record.namespaceLabels).toEqual({ 'kubernetes.io/metadata.name': 'shop', team: 'a' });
    const back = loadWorldFromTexts([{ file: 'x', text: r.record.text }]).world.pods[0]!;
    const orig = world.pods.find((p) => p.name === 'web-1')!;
    expect({ ...back, source: null }).toEqual({ ...orig, source: null });
  });

  it('diff writes only what changed and deletes what went', () => {
    const a = new Map([
      ['k1', 'v1'],
      ['k2', 'v2'],
    ]);
    expect(diffEndpoints(a, a)).toEqual({ puts: [], deletes: [] });
    const b = new Map([
      ['k1', 'v1'],
      ['k2', 'v2b'],
      ['k3', 'v3'],
    ]);
    expect(diffEndpoints(a, b)).toEqual({
      puts: [
        ['k2', 'v2b'],
        ['k3', 'v3'],
      ],
      deletes: [],
    });
    expect(diffEndpoints(b, new Map([['k3', 'v3']]))).toEqual({ puts: [], deletes: ['k1', 'k2'] });
  });
});
