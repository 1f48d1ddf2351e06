/**
 * Merging the mesh view into the local snapshot: one world for the
 * reconciler, the local source wins on duplicates (reported as shadowed),
 * remote namespaces come from the endpoints' namespace labels.
 */
import { describe, expect, it } from 'vitest';
import { loadWorldFromTexts } from '../../policy-compiler/src/load/index.js';
import {
  countRecords,
  meshInputs,
  mergeSnapshots,
  type MeshEntry,
  type MeshView,
} from '../../enforcer/src/sources/mesh-store-merge.js';
import { parseMeshRecord } from '../../enforcer/src/sources/mesh-store-records.js';
import { makeSnapshot } from '../../enforcer/src/sources/snapshot.js';
import { endpointKey } from '../../tunnel/src/mesh-store.js';

function entry(key: string, value: unknown, modRevision: string): [string, MeshEntry] {
  const r = parseMeshRecord(key, Buffer.from(JSON.stringify(value)), 'east');
  if (r.ok !== true) throw new Error(`${key}: ${JSON.stringify(r)}`);
  return [key, { record: r.record, modRevision }];
}

const ep = (name: string, ip: string, nsLabels: Record<string, string>) => ({
  namespace: 'shop',
  name,
  labels: { app: name },
  namespaceLabels: nsLabels,
  ips: [ip],
  ports: [],
});

const MNP = {
  apiVersion: 'palisade.dev/v1alpha1',
  kind: 'MeshNetworkPolicy',
  metadata: { name: 'mesh-deny' },
  spec: {
    tier: 'Admin',
    priority: 10,
    subject: { namespaces: {} },
    ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
  },
};

const view: MeshView = {
  revision: '42',
  notes: new Map(),
  entries: new Map([
    entry(
      '/palisade/clusters/west/cluster',
      { name: 'west', labels: { region: 'eu' }, podCIDRs: ['10.78.0.0/16'] },
      '5',
    ),
    entry(
      '/palisade/clusters/south/cluster',
      {
        name: 'south',
        labels: {},
        podCIDRs: ['10.79.0.0/16'],
        gateway: { endpoint: '198.51.100.7:51820' },
      },
      '6',
    ),
    entry(endpointKey('west', 'shop', 'a'), ep('a', '10.78.0.1', { team: 'old' }), '7'),
    entry(endpointKey('west', 'shop', 'b'), ep('b', '10.78.0.2', { team: 'new' }), '9'),
    entry(endpointKey('south', 'shop', 'c'), ep('c', '10.79.0.1', {}), '3'),
    entry('/palisade/policies/mesh-deny', MNP, '11'),
  ]),
};

const LOCAL = `
apiVersion: palisade.dev/v1alpha1
kind: Cluster
metadata: {name: east}
spec: {podCIDRs: [10.77.0.0/16]}
---
apiVersion: v1
kind: Pod
metadata: {name: x, namespace: shop, annotations: {palisade.dev/cluster: east}}
spec: {nodeName: n1, containers: [{name: c}]}
status: {podIP: 10.77.1.2}
`;

describe('meshInputs + mergeSnapshots', () => {
  it('adds remote clusters, pods, namespaces (newest labels) and mesh policies to the local world', () => {
    const local = makeSnapshot([{ file: 'local.yaml', text: LOCAL }]);
    const localWorld = loadWorldFromTexts(local.inputs).world;
    const { inputs, shadowed } = meshInputs(view, localWorld);
    expect(shadowed).toEqual([]);
    const merged = mergeSnapshots(local, inputs);
    const w = loadWorldFromTexts(merged.inputs);
    expect(w.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(w.world.pods.map((p) => `${p.cluster}/${p.namespace}/${p.name}`)).toEqual([
      'east/shop/x',
      'south/shop/c',
      'west/shop/a',
      'west/shop/b',
    ]);
    expect(w.world.clusters.find((c) => c.name === 'west')?.labels).toMatchObject({ region: 'eu' });
    // b's record is newer (modRevision 9 > 7): its namespace labels win
    expect(
      w.world.namespaces.find((n) => n.cluster === 'west' && n.name === 'shop')?.labels,
    ).toMatchObject({ team: 'new' });
    expect(w.world.clusterPolicies.map((p) => [p.kind, p.name])).toEqual([
      ['MeshNetworkPolicy', 'mesh-deny'],
    ]);
    // two peer clusters, one of which publishes a gateway (a tunnel peer)
    expect(countRecords(view)).toEqual({ clusters: 2, gateways: 1, endpoints: 3, policies: 1 });
    // the digest follows the content
    expect(merged.digest).not.toBe(local.digest);
  });

  it('what the local source declares wins, and every left-out record is reported', () => {
    const text = `${LOCAL}
---
apiVersion: palisade.dev/v1alpha1
kind: Cluster
metadata: {name: west, labels: {region: local}}
spec: {}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: shop, annotations: {palisade.dev/cluster: west}}
spec: {containers: [{name: c}]}
status: {podIP: 10.78.0.1}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: declared}, annotations: {palisade.dev/cluster: west}}
---
${JSON.stringify(MNP)}
`;
    const local = makeSnapshot([{ file: 'local.yaml', text }]);
    const { inputs, shadowed } = meshInputs(view, loadWorldFromTexts(local.inputs).world);
    expect(shadowed.map((s) => s.key).sort()).toEqual([
      '/palisade/clusters/west/cluster',
      '/palisade/clusters/west/endpoints/shop/a',
      '/palisade/policies/mesh-deny',
    ]);
    expect(shadowed.every((s) => s.kind === 'shadowed' && s.message.includes('local source'))).toBe(
      true,
    );
    const w = loadWorldFromTexts(mergeSnapshots(local, inputs).inputs);
    expect(w.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(w.world.clusters.find((c) => c.name === 'west')?.labels).toMatchObject({
      region: 'local',
    });
    expect(
      w.world.namespaces.find((n) => n.cluster === 'west' && n.name === 'shop')?.labels,
    ).toMatchObject({ team: 'declared' });
    expect(w.world.pods.filter((p) => p.cluster === 'west').map((p) => p.name)).toEqual(['a', 'b']);
  });

  it('an empty view leaves the local snapshot as it is', () => {
    const local = makeSnapshot([{ file: 'local.yaml', text: LOCAL }]);
    const empty: MeshView = { revision: '1', notes: new Map(), entries: new Map() };
    const { inputs } = meshInputs(empty, loadWorldFromTexts(local.inputs).world);
    expect(mergeSnapshots(local, inputs)).toBe(local);
  });
});
