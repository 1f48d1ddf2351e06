/**
 * Seeded fast-check arbitraries of random WORLDS (model objects, no YAML) for
 * differential tests between engines: namespaces, pods with random labels,
 * IPv4 and IPv6 addresses, named ports, two clusters, nodes, hostNetwork pods,
 * NetworkPolicy / ClusterNetworkPolicy / AdminNetworkPolicy /
 * BaselineAdminNetworkPolicy / MeshNetworkPolicy with random selectors,
 * ports, ranges, CIDRs with except, Pass and Audit.
 *
 * Addresses are unique per endpoint (hostNetwork pods use their node's), and
 * external probe addresses never equal a pod address: the datapath cannot
 * tell `ip:<a pod's address>` from that pod, while the reference evaluator
 * treats `ip:` endpoints as never being pods.
 */
import fc from 'fast-check';
import type { Probe } from '../../policy-compiler/src/engine.js';
import {
  NO_SOURCE,
  type ClusterPolicy,
  type ClusterPolicyKind,
  type ClusterPolicyPeer,
  type ClusterPolicyRule,
  type LabelSelector,
  type NetworkPolicy,
  type NetworkPolicyPeer,
  type NetworkPolicyRule,
  type PortMatch,
  type PortMatches,
  type Protocol,
  type SelectorRequirement,
  type World,
  type Pod,
  type Node,
} from '../../policy-compiler/src/model/index.js';
import { nodeId, podId } from '../../policy-compiler/src/model/endpoint.js';
import { buildWorld, cluster, namespace } from './world-builder.js';

export interface WorldOptions {
  /** Upper bounds (small worlds by default, so 1,000 of them run in seconds). */
  readonly maxPods?: number;
  readonly maxNetworkPolicies?: number;
  readonly maxClusterPolicies?: number;
  readonly maxRules?: number;
}

const CLUSTERS = ['c1', 'c2'] as const;
const NAMESPACES = ['ns-a', 'ns-b', 'ns-c'] as const;
const KEYS = ['app', 'tier', 'role'] as const;
const VALUES = ['a', 'b', 'c'] as const;
const NS_KEYS = ['team', 'env'] as const;
const PORT_NAMES = ['http', 'dns', 'metrics'] as const;

const V4_CIDRS = [
  '10.1.0.0/16',
  '10.1.0.0/24',
  '10.1.0.2/32',
  '10.2.0.0/16',
  '10.0.0.0/8',
  '0.0.0.0/0',
  '192.168.0.0/16',
  '192.168.1.0/24',
  '8.8.8.0/24',
  '10.1.1.0/25',
];
const V6_CIDRS = [
  'fd00::/8',
  'fd00:1::/32',
  'fd00:2::/32',
  '::/0',
  'fd00:1::2/128',
  '2001:db8::/32',
  'fd01::/16',
];
/** Probe-only addresses: outside every pod address. */
export const EXTERNALS = [
  '10.1.0.200',
  '8.8.8.8',
  '192.168.1.7',
  '172.16.0.1',
  'fd00:1::99',
  '2001:db8::1',
  'fd01::7',
];

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);

const arbRequirement: fc.Arbitrary<SelectorRequirement> = fc.oneof(
  fc.record({
    key: pick(KEYS),
    operator: pick(['In', 'NotIn'] as const),
    values: fc.uniqueArray(pick(VALUES), { minLength: 1, maxLength: 2 }),
  }),
  fc.record({
    key: pick(KEYS),
    operator: pick(['Exists', 'DoesNotExist'] as const),
    values: fc.constant([] as string[]),
  }),
);

const arbSelector = (
  keys: readonly string[],
  values: readonly string[] = VALUES,
): fc.Arbitrary<LabelSelector> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant({ matchLabels: {}, matchExpressions: [] }) },
    {
      weight: 4,
      arbitrary: fc.record({
        matchLabels: fc.dictionary(pick(keys), pick(values), { maxKeys: 1 }),
        matchExpressions: fc.array(
          keys === KEYS
            ? arbRequirement
            : fc
                .record({
                  key: pick(keys),
                  operator: pick(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const),
                  values: fc.constant([]),
                })
                .map((r) =>
                  r.operator === 'In' || r.operator === 'NotIn'
                    ? { ...r, values: [values[0] as string] }
                    : r,
                ),
          { maxLength: 1 },
        ),
      }),
    },
  );

const arbPodSelector = arbSelector(KEYS);
const arbNsSelector = arbSelector(NS_KEYS, ['x', 'y']);
const arbClusterSelector = arbSelector(['region'], ['r1', 'r2']);
const arbNodeSelector = arbSelector(['zone'], ['z1', 'z2']);

const arbProtocol: fc.Arbitrary<Protocol> = fc.constantFrom('TCP', 'TCP', 'UDP', 'SCTP');
const arbPortMatch: fc.Arbitrary<PortMatch> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({
        kind: fc.constant('range' as const),
        protocol: arbProtocol,
        start: fc.constantFrom(53, 80, 443, 8080),
        end: fc.constant(0),
      })
      .map((p) => ({ ...p, end: p.start })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        protocol: arbProtocol,
        start: fc.integer({ min: 1, max: 9000 }),
        len: fc.integer({ min: 0, max: 9000 }),
      })
      .map(({ protocol, start, len }) => ({
        kind: 'range' as const,
        protocol,
        start,
        end: Math.min(65535, start + len),
      })),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('all' as const), protocol: arbProtocol }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('named' as const),
      protocol: fc.constantFrom<Protocol | 'any'>('TCP', 'UDP', 'any'),
      name: pick(PORT_NAMES),
    }),
  },
);
const arbPorts: fc.Arbitrary<PortMatches> = fc.oneof(
  { weight: 1, arbitrary: fc.constant('all' as const) },
  { weight: 3, arbitrary: fc.array(arbPortMatch, { minLength: 1, maxLength: 3 }) },
);

const arbV4Block = pick(V4_CIDRS);
const arbAnyCidr = fc.oneof(
  { weight: 3, arbitrary: arbV4Block },
  { weight: 2, arbitrary: pick(V6_CIDRS) },
);

const arbNpPeer: fc.Arbitrary<NetworkPolicyPeer> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('pods' as const),
      namespaceSelector: fc.option(arbNsSelector, { nil: null }),
      podSelector: arbPodSelector,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('ipBlock' as const),
      cidr: arbAnyCidr,
      except: fc.array(arbAnyCidr, { maxLength: 2 }),
    }),
  },
);

const arbCpPeer = (mesh: boolean): fc.Arbitrary<ClusterPolicyPeer> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('pods' as const),
        namespaceSelector: arbNsSelector,
        podSelector: arbPodSelector,
        clusters: mesh ? fc.option(arbClusterSelector, { nil: null }) : fc.constant(null),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('nodes' as const), nodeSelector: arbNodeSelector }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('networks' as const),
        cidrs: fc.array(arbAnyCidr, { minLength: 1, maxLength: 2 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('domainNames' as const),
        names: fc.constant(['example.com']),
      }),
    },
  );

function npRules(maxRules: number): fc.Arbitrary<NetworkPolicyRule[]> {
  return fc
    .array(
      fc.record({
        peers: fc.oneof(
          { weight: 1, arbitrary: fc.constant('all' as const) },
          { weight: 3, arbitrary: fc.array(arbNpPeer, { minLength: 1, maxLength: 2 }) },
        ),
        ports: arbPorts,
      }),
      { maxLength: maxRules },
    )
    .map((rs) => rs.map((r, index) => ({ ...r, index, source: NO_SOURCE })));
}

function cpRules(
  maxRules: number,
  mesh: boolean,
  baseline: boolean,
): fc.Arbitrary<ClusterPolicyRule[]> {
  return fc
    .array(
      fc.record({
        name: fc.constantFrom('', 'r'),
        action: baseline
          ? fc.constantFrom<'Accept' | 'Deny'>('Accept', 'Deny')
          : fc.constantFrom<'Accept' | 'Deny' | 'Pass'>('Accept', 'Deny', 'Pass'),
        peers: fc.array(arbCpPeer(mesh), { minLength: 1, maxLength: 2 }),
        ports: arbPorts,
      }),
      { maxLength: maxRules },
    )
    .map((rs) => rs.map((r, index) => ({ ...r, index, source: NO_SOURCE })));
}

interface PodDraft {
  cluster: number;
  ns: string;
  labels: Record<string, string>;
  v4: boolean;
  v6: boolean;
  ports: { name: string | null; containerPort: number; protocol: Protocol }[];
  node: number | null;
}

const arbPodDraft: fc.Arbitrary<PodDraft> = fc.record({
  cluster: fc.integer({ min: 0, max: 1 }),
  ns: pick(NAMESPACES),
  labels: fc.dictionary(pick(KEYS), pick(VALUES), { maxKeys: 3 }),
  v4: fc.boolean(),
  v6: fc.boolean(),
  ports: fc.uniqueArray(
    fc.oneof(
      fc.constant({ name: 'http', containerPort: 80, protocol: 'TCP' as Protocol }),
      fc.constant({ name: 'http', containerPort: 8080, protocol: 'TCP' as Protocol }),
      fc.constant({ name: 'dns', containerPort: 53, protocol: 'UDP' as Protocol }),
      fc.constant({ name: 'metrics', containerPort: 9090, protocol: 'TCP' as Protocol }),
      fc.constant({ name: 'metrics', containerPort: 9090, protocol: 'SCTP' as Protocol }),
      fc.constant({ name: null, containerPort: 443, protocol: 'TCP' as Protocol }),
    ),
    { maxLength: 2, selector: (p) => `${p.name}/${p.protocol}` },
  ),
  node: fc.option(fc.integer({ min: 0, max: 1 }), { nil: null }),
});

/** A random world. */
export function arbWorld(opts: WorldOptions = {}): fc.Arbitrary<World> {
  const maxPods = opts.maxPods ?? 6;
  const maxRules = opts.maxRules ?? 3;
  const kinds: ClusterPolicyKind[] = [
    'ClusterNetworkPolicy',
    'AdminNetworkPolicy',
    'BaselineAdminNetworkPolicy',
    'MeshNetworkPolicy',
  ];
  const arbCp = fc
    .record({
      kind: pick(kinds),
      tierBaseline: fc.boolean(),
      priority: fc.integer({ min: 0, max: 3 }),
      cluster: fc.integer({ min: 0, max: 1 }),
      audit: fc.boolean(),
      subject: fc.record({
        namespaceSelector: arbNsSelector,
        podSelector: arbPodSelector,
        clusters: fc.option(arbClusterSelector, { nil: null }),
      }),
      encryption: fc.boolean(),
      seedRules: fc.nat(),
    })
    .chain((d) => {
      const mesh = d.kind === 'MeshNetworkPolicy';
      const tier =
        d.kind === 'AdminNetworkPolicy'
          ? 'Admin'
          : d.kind === 'BaselineAdminNetworkPolicy'
            ? 'Baseline'
            : d.tierBaseline
              ? 'Baseline'
              : 'Admin';
      return fc
        .record({
          ingress: cpRules(maxRules, mesh, tier === 'Baseline'),
          egress: cpRules(maxRules, mesh, tier === 'Baseline'),
        })
        .map((rules): Omit<ClusterPolicy, 'name'> => ({
          kind: d.kind,
          cluster: mesh ? null : (CLUSTERS[d.cluster] as string),
          revision: '1',
          tier,
          priority: d.kind === 'BaselineAdminNetworkPolicy' ? 1000 : d.priority,
          subject: {
            namespaceSelector: d.subject.namespaceSelector,
            podSelector: d.subject.podSelector,
            clusters: mesh ? d.subject.clusters : null,
          },
          ingress: rules.ingress,
          egress: rules.egress,
          mode: mesh && d.audit ? 'Audit' : 'Enforce',
          encryptionRequired: mesh && d.encryption,
          logging: { allowed: mesh && d.encryption, denied: mesh && d.audit },
          source: NO_SOURCE,
        }));
    });
  const arbNp = fc
    .record({
      cluster: fc.integer({ min: 0, max: 1 }),
      ns: pick(NAMESPACES),
      podSelector: arbPodSelector,
      ingressOn: fc.boolean(),
      egressOn: fc.boolean(),
      ingress: npRules(maxRules),
      egress: npRules(maxRules),
    })
    .map((d): Omit<NetworkPolicy, 'name'> => ({
      kind: 'NetworkPolicy',
      cluster: CLUSTERS[d.cluster] as string,
      namespace: d.ns,
      revision: '1',
      podSelector: d.podSelector,
      policyTypes: { ingress: d.ingressOn || !d.egressOn, egress: d.egressOn },
      ingress: d.ingress,
      egress: d.egress,
      source: NO_SOURCE,
    }));

  return fc
    .record({
      regions: fc.tuple(pick(['r1', 'r2']), pick(['r1', 'r2'])),
      nsLabels: fc.array(fc.dictionary(pick(NS_KEYS), pick(['x', 'y']), { maxKeys: 2 }), {
        minLength: 6,
        maxLength: 6,
      }),
      nodes: fc.array(
        fc.record({
          zone: fc.option(pick(['z1', 'z2']), { nil: null }),
          v6: fc.boolean(),
          present: fc.boolean(),
        }),
        { minLength: 4, maxLength: 4 },
      ),
      pods: fc.array(fc.tuple(arbPodDraft, fc.integer({ min: 0, max: 9 })), {
        minLength: 1,
        maxLength: maxPods,
      }),
      nps: fc.array(arbNp, { maxLength: opts.maxNetworkPolicies ?? 3 }),
      cps: fc.array(arbCp, { maxLength: opts.maxClusterPolicies ?? 5 }),
    })
    .map(({ regions, nsLabels, nodes, pods, nps, cps }) => {
      const clusters = CLUSTERS.map((c, i) => cluster(c, { region: regions[i] as string }));
      const namespaces = CLUSTERS.flatMap((c, ci) =>
        NAMESPACES.map((n, ni) => namespace(`${c}/${n}`, nsLabels[ci * 3 + ni] ?? {})),
      );
      const nodeObjs: Node[] = [];
      nodes.forEach((n, i) => {
        if (!n.present) return;
        const c = i >> 1;
        nodeObjs.push({
          cluster: CLUSTERS[c] as string,
          name: `node${i & 1}`,
          labels: n.zone === null ? {} : { zone: n.zone },
          ips: n.v6
            ? [`192.168.${c + 1}.${(i & 1) + 1}`, `fd01::${c + 1}:${(i & 1) + 1}`]
            : [`192.168.${c + 1}.${(i & 1) + 1}`],
          source: NO_SOURCE,
        });
      });
      const podObjs: Pod[] = pods.map(([d, hostRoll], i) => {
        const c = d.cluster + 1;
        const v4 = d.v4 || !d.v6;
        const ips = [
          ...(v4 ? [`10.${c}.${i % 2}.${i + 1}`] : []),
          ...(d.v6 ? [`fd00:${c}::${i + 1}`] : []),
        ];
        return {
          cluster: CLUSTERS[d.cluster] as string,
          namespace: d.ns,
          name: `p${i}`,
          uid: null,
          labels: d.labels,
          nodeName: d.node === null ? null : `node${d.node}`,
          hostNetwork: hostRoll === 0,
          ips,
          ports: d.ports,
          source: NO_SOURCE,
        };
      });
      return buildWorld({
        clusters,
        namespaces,
        nodes: nodeObjs,
        pods: podObjs,
        networkPolicies: nps.map((p, i) => ({ ...p, name: `np${i}` })),
        clusterPolicies: cps.map((p, i) => ({ ...p, name: `cp${i % 3}-${i}` })),
      });
    });
}

/** Endpoint ids of a world that can be probed (have an address), plus the external addresses. */
export function probeEndpoints(world: World): string[] {
  const nodes = new Map(world.nodes.map((n) => [nodeId(n), n]));
  const ids: string[] = [];
  for (const p of world.pods) {
    const n =
      p.nodeName === null ? undefined : nodes.get(nodeId({ cluster: p.cluster, name: p.nodeName }));
    const ips = p.hostNetwork && n !== undefined && n.ips.length > 0 ? n.ips : p.ips;
    if (ips.length > 0) ids.push(podId(p));
  }
  for (const n of world.nodes) if (n.ips.length > 0) ids.push(nodeId(n));
  for (const e of EXTERNALS) ids.push(`ip:${e}`);
  return ids;
}

export const PROBE_PORTS: readonly { protocol: Protocol; port: number }[] = [
  { protocol: 'TCP', port: 80 },
  { protocol: 'TCP', port: 8080 },
  { protocol: 'UDP', port: 53 },
  { protocol: 'SCTP', port: 9090 },
  { protocol: 'TCP', port: 443 },
];

/** Random probes between a world's endpoints (a subset of the full matrix, with random ports). */
export function arbProbes(world: World, maxProbes = 20): fc.Arbitrary<Probe[]> {
  const ids = probeEndpoints(world);
  return fc.array(
    fc.record({
      from: pick(ids),
      to: pick(ids),
      protocol: arbProtocol,
      port: fc.oneof(pick([53, 80, 443, 8080, 9090]), fc.integer({ min: 1, max: 65535 })),
    }),
    { maxLength: maxProbes },
  );
}
