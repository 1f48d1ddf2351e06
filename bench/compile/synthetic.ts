/**
 * Synthetic, realistic worlds for the compiler benchmark: 2 clusters, 500
 * namespaces (teams, environments), deployments of pods with app/tier labels
 * and named ports, nodes, and 1,000 policies of mixed kinds (per-namespace
 * NetworkPolicies, cluster-wide Admin/Baseline policies, mesh policies).
 * Deterministic for a given size (seeded linear congruential generator).
 */
import {
  CLUSTER_NAME_LABEL,
  NAMESPACE_NAME_LABEL,
  NO_SOURCE,
  type ClusterPolicy,
  type ClusterPolicyKind,
  type NetworkPolicy,
  type Pod,
  type Node,
  type World,
  type Namespace,
  type Cluster,
  type PortMatch,
} from '../../policy-compiler/src/model/index.js';

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const sel = (m: Record<string, string> = {}) => ({ matchLabels: m, matchExpressions: [] });
const tcp = (port: number, end = port): PortMatch => ({
  kind: 'range',
  protocol: 'TCP',
  start: port,
  end,
});
const named = (name: string): PortMatch => ({ kind: 'named', protocol: 'TCP', name });

export interface SyntheticOptions {
  readonly pods: number;
  readonly namespaces?: number;
  readonly policies?: number;
  readonly seed?: number;
}

export function syntheticWorld(o: SyntheticOptions): World {
  const r = rng(o.seed ?? 42);
  const int = (n: number): number => Math.floor(r() * n);
  const nsCount = o.namespaces ?? 500;
  const policyCount = o.policies ?? 1000;
  const clusters: Cluster[] = ['east', 'west'].map((name, i) => ({
    name,
    labels: { region: i === 0 ? 'r1' : 'r2', [CLUSTER_NAME_LABEL]: name },
    podCIDRs: [i === 0 ? '10.0.0.0/9' : '10.128.0.0/9'],
    serviceCIDRs: [],
    nodeCIDRs: [],
    gateway: null,
    declared: true,
    source: NO_SOURCE,
  }));
  const teams = ['pay', 'shop', 'search', 'ads', 'infra', 'data', 'ml', 'auth'];
  const envs = ['prod', 'staging', 'dev'];
  const namespaces: Namespace[] = [];
  for (let i = 0; i < nsCount; i++) {
    const c = clusters[i % 2] as Cluster;
    namespaces.push({
      cluster: c.name,
      name: `ns${i}`,
      labels: {
        team: teams[i % teams.length] as string,
        env: envs[i % envs.length] as string,
        [NAMESPACE_NAME_LABEL]: `ns${i}`,
      },
      declared: true,
      source: NO_SOURCE,
    });
  }
  const nodesPerCluster = Math.max(2, Math.ceil(o.pods / 100 / 2));
  const nodes: Node[] = [];
  for (const [ci, c] of clusters.entries()) {
    for (let i = 0; i < nodesPerCluster; i++) {
      nodes.push({
        cluster: c.name,
        name: `node${i}`,
        labels: { zone: `z${i % 3}`, role: i === 0 ? 'infra' : 'worker' },
        ips: [`172.${16 + ci}.${i >> 8}.${i & 255}`],
        source: NO_SOURCE,
      });
    }
  }
  const apps = ['web', 'api', 'db', 'cache', 'worker', 'gateway'];
  const pods: Pod[] = [];
  for (let i = 0; i < o.pods; i++) {
    const ns = namespaces[i % nsCount] as Namespace;
    const ci = ns.cluster === 'east' ? 0 : 1;
    const app = apps[Math.floor(i / nsCount) % apps.length] as string;
    const n = i >> 1;
    const v4 = `10.${ci * 128 + ((n >> 16) & 127)}.${(n >> 8) & 255}.${n & 255}`;
    pods.push({
      cluster: ns.cluster,
      namespace: ns.name,
      name: `${app}-${i}`,
      uid: null,
      labels: {
        app,
        tier: app === 'db' || app === 'cache' ? 'data' : 'front',
        'pod-template-hash': `h${i % 7}`,
      },
      nodeName: `node${int(nodesPerCluster)}`,
      hostNetwork: false,
      ips:
        i % 5 === 0
          ? [v4, `fd00:${ci}::${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}`]
          : [v4],
      ports: [
        { name: 'http', containerPort: app === 'web' ? 8080 : 80, protocol: 'TCP' },
        { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
      ],
      source: NO_SOURCE,
    });
  }
  const networkPolicies: NetworkPolicy[] = [];
  const clusterPolicies: ClusterPolicy[] = [];
  const npCount = Math.round(policyCount * 0.8);
  for (let i = 0; i < npCount; i++) {
    const ns = namespaces[int(nsCount)] as Namespace;
    const app = apps[int(apps.length)] as string;
    const kind = i % 4;
    const ingress =
      kind === 0
        ? [
            {
              index: 0,
              peers: [
                {
                  kind: 'pods' as const,
                  namespaceSelector: null,
                  podSelector: sel({ app: 'web' }),
                },
              ],
              ports: [named('http')],
              source: NO_SOURCE,
            },
          ]
        : kind === 1
          ? [
              {
                index: 0,
                peers: [
                  {
                    kind: 'pods' as const,
                    namespaceSelector: sel({ team: ns.labels.team as string }),
                    podSelector: sel(),
                  },
                ],
                ports: [tcp(80), tcp(8000, 8999)],
                source: NO_SOURCE,
              },
            ]
          : kind === 2
            ? [
                {
                  index: 0,
                  peers: [
                    {
                      kind: 'ipBlock' as const,
                      cidr: `10.${int(256)}.0.0/16`,
                      except: [`10.${int(256)}.1.0/24`],
                    },
                  ],
                  ports: 'all' as const,
                  source: NO_SOURCE,
                },
              ]
            : [];
    networkPolicies.push({
      kind: 'NetworkPolicy',
      cluster: ns.cluster,
      namespace: ns.name,
      name: `np${i}`,
      revision: '1',
      podSelector: sel(kind === 3 ? {} : { app }),
      policyTypes: { ingress: true, egress: kind === 1 },
      ingress,
      egress:
        kind === 1
          ? [
              {
                index: 0,
                peers: [
                  { kind: 'pods', namespaceSelector: sel(), podSelector: sel({ app: 'db' }) },
                ],
                ports: [tcp(5432)],
                source: NO_SOURCE,
              },
            ]
          : [],
      source: NO_SOURCE,
    });
  }
  const cpKinds: ClusterPolicyKind[] = [
    'ClusterNetworkPolicy',
    'AdminNetworkPolicy',
    'BaselineAdminNetworkPolicy',
    'MeshNetworkPolicy',
  ];
  for (let i = 0; npCount + i < policyCount; i++) {
    const kind = cpKinds[i % 4] as ClusterPolicyKind;
    const mesh = kind === 'MeshNetworkPolicy';
    const tier =
      kind === 'AdminNetworkPolicy' ||
      (kind === 'ClusterNetworkPolicy' && i % 8 < 4) ||
      (mesh && i % 3 === 0)
        ? 'Admin'
        : 'Baseline';
    const team = teams[int(teams.length)] as string;
    const action =
      tier === 'Baseline'
        ? i % 2 === 0
          ? 'Deny'
          : 'Accept'
        : (['Accept', 'Deny', 'Pass'] as const)[i % 3];
    clusterPolicies.push({
      kind,
      name: `cp${i}`,
      cluster: mesh ? null : (clusters[i % 2] as Cluster).name,
      revision: '1',
      tier,
      priority: kind === 'BaselineAdminNetworkPolicy' ? 1000 : int(100),
      subject: {
        namespaceSelector: sel({ team }),
        podSelector: sel(i % 2 === 0 ? {} : { app: apps[int(apps.length)] as string }),
        clusters: null,
      },
      ingress: [
        {
          index: 0,
          name: 'from-team',
          action: action as 'Accept' | 'Deny' | 'Pass',
          peers: [
            {
              kind: 'pods',
              namespaceSelector: sel({ team: teams[int(teams.length)] as string }),
              podSelector: sel(),
              clusters: mesh ? sel({ region: 'r2' }) : null,
            },
          ],
          ports: [tcp(443), tcp(8080)],
          source: NO_SOURCE,
        },
      ],
      egress:
        i % 5 === 0
          ? [
              {
                index: 0,
                name: 'to-internet',
                action: tier === 'Baseline' ? 'Deny' : 'Accept',
                peers: [{ kind: 'networks', cidrs: ['0.0.0.0/0'] }],
                ports: 'all',
                source: NO_SOURCE,
              },
            ]
          : [],
      mode: mesh && i % 4 === 3 ? 'Audit' : 'Enforce',
      encryptionRequired: mesh,
      logging: { allowed: false, denied: true },
      source: NO_SOURCE,
    });
  }
  const by =
    <T>(k: (t: T) => string) =>
    (a: T, b: T) =>
      k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0;
  const nsKey = (x: { cluster: string; namespace: string; name: string }): string =>
    `${x.cluster}\u0000${x.namespace}\u0000${x.name}`;
  return {
    clusters,
    namespaces: namespaces.sort(by((n) => `${n.cluster}\u0000${n.name}`)),
    pods: pods.sort(by(nsKey)),
    nodes: nodes.sort(by((n) => `${n.cluster}\u0000${n.name}`)),
    networkPolicies: networkPolicies.sort(by(nsKey)),
    clusterPolicies: clusterPolicies.sort(by((p) => `${p.cluster ?? ''}\u0000${p.name}`)),
  };
}
