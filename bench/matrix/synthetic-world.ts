/**
 * A deterministic synthetic world for the matrix benchmark: two clusters,
 * namespaces with team/env labels, pods with app/tier labels and named
 * container ports, nodes, and a mix of every policy kind. Seeded, so two
 * runs measure the same world.
 */
import {
  CLUSTER_NAME_LABEL,
  NAMESPACE_NAME_LABEL,
  NO_SOURCE,
  SELECT_ALL,
  type Cluster,
  type ClusterPolicy,
  type ClusterPolicyKind,
  type ClusterPolicyPeer,
  type ClusterPolicyRule,
  type LabelSelector,
  type Namespace,
  type NetworkPolicy,
  type NetworkPolicyRule,
  type Node,
  type Pod,
  type PortMatches,
  type RuleAction,
  type World,
} from '../../policy-compiler/src/index.js';

export interface SyntheticSize {
  readonly pods: number;
  readonly policies: number;
  readonly seed?: number;
}

/** mulberry32: small, fast, good enough to spread labels. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CLUSTERS = ['east', 'west'] as const;
const TEAMS = ['shop', 'payments', 'data', 'platform', 'search'] as const;
const APPS = ['web', 'api', 'db', 'cache', 'worker', 'auth', 'search', 'etl'] as const;
export const BENCH_PORTS = [
  { protocol: 'TCP', port: 80 },
  { protocol: 'TCP', port: 443 },
  { protocol: 'TCP', port: 5432 },
  { protocol: 'TCP', port: 8080 },
  { protocol: 'UDP', port: 53 },
] as const;
const NAMED = [
  { name: 'http', containerPort: 80, protocol: 'TCP' },
  { name: 'https', containerPort: 443, protocol: 'TCP' },
  { name: 'postgres', containerPort: 5432, protocol: 'TCP' },
  { name: 'alt-http', containerPort: 8080, protocol: 'TCP' },
  { name: 'dns', containerPort: 53, protocol: 'UDP' },
] as const;

const sel = (matchLabels: Record<string, string>): LabelSelector => ({
  matchLabels,
  matchExpressions: [],
});

export function syntheticWorld(size: SyntheticSize): World {
  const r = rng(size.seed ?? 42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

  const clusters: Cluster[] = CLUSTERS.map((name, ci) => ({
    name,
    labels: { region: ci === 0 ? 'us-east' : 'eu-west', [CLUSTER_NAME_LABEL]: name },
    podCIDRs: [`10.${ci + 1}.0.0/16`],
    serviceCIDRs: [`10.${ci + 101}.0.0/16`],
    nodeCIDRs: [`192.168.${ci + 1}.0/24`],
    gateway: null,
    declared: true,
    source: NO_SOURCE,
  }));

  const namespaces: Namespace[] = [];
  for (const cluster of CLUSTERS) {
    for (let i = 0; i < 10; i++) {
      const name = `ns-${i}`;
      namespaces.push({
        cluster,
        name,
        labels: {
          team: TEAMS[i % TEAMS.length] as string,
          env: i % 3 === 0 ? 'dev' : 'prod',
          [NAMESPACE_NAME_LABEL]: name,
        },
        declared: true,
        source: NO_SOURCE,
      });
    }
  }

  const nodes: Node[] = [];
  for (const [ci, cluster] of CLUSTERS.entries()) {
    for (let i = 0; i < 4; i++) {
      nodes.push({
        cluster,
        name: `node-${i}`,
        labels: { 'kubernetes.io/hostname': `node-${i}`, role: i === 0 ? 'infra' : 'worker' },
        ips: [`192.168.${ci + 1}.${10 + i}`],
        source: NO_SOURCE,
      });
    }
  }

  const pods: Pod[] = [];
  for (let i = 0; i < size.pods; i++) {
    const ci = i % 2;
    const ns = namespaces[ci * 10 + (Math.floor(i / 2) % 10)] as Namespace;
    const app = pick(APPS);
    const ports = [NAMED[i % NAMED.length], NAMED[(i * 7 + 3) % NAMED.length]].filter(
      (p, k, a) => a.indexOf(p) === k,
    ) as (typeof NAMED)[number][];
    pods.push({
      cluster: ns.cluster,
      namespace: ns.name,
      name: `${app}-${i}`,
      uid: null,
      labels: { app, tier: pick(['frontend', 'backend', 'data']) },
      nodeName: `node-${i % 4}`,
      hostNetwork: false,
      ips: [`10.${ci + 1}.${Math.floor(i / 250)}.${(i % 250) + 1}`],
      ports: ports.map((p) => ({ ...p })),
      source: NO_SOURCE,
    });
  }

  const randomPorts = (): PortMatches => {
    const x = r();
    if (x < 0.25) return 'all';
    if (x < 0.5) return [{ kind: 'named', protocol: 'TCP', name: pick(NAMED).name }];
    if (x < 0.75) return [{ kind: 'range', protocol: 'TCP', start: 400, end: 6000 }];
    const p = pick(BENCH_PORTS);
    return [{ kind: 'range', protocol: p.protocol, start: p.port, end: p.port }];
  };

  const networkPolicies: NetworkPolicy[] = [];
  const clusterPolicies: ClusterPolicy[] = [];
  const npCount = Math.round(size.policies * 0.6);
  for (let i = 0; i < npCount; i++) {
    const ns = pick(namespaces);
    const rules = (n: number): NetworkPolicyRule[] =>
      Array.from({ length: n }, (_, index) => ({
        index,
        peers:
          r() < 0.2
            ? 'all'
            : [
                r() < 0.5
                  ? { kind: 'pods', namespaceSelector: null, podSelector: sel({ app: pick(APPS) }) }
                  : r() < 0.8
                    ? {
                        kind: 'pods',
                        namespaceSelector: sel({ team: pick(TEAMS) }),
                        podSelector: SELECT_ALL,
                      }
                    : { kind: 'ipBlock', cidr: '10.0.0.0/8', except: ['10.2.0.0/16'] },
              ],
        ports: randomPorts(),
        source: NO_SOURCE,
      }));
    const egress = r() < 0.4;
    networkPolicies.push({
      kind: 'NetworkPolicy',
      cluster: ns.cluster,
      namespace: ns.name,
      name: `np-${i}`,
      revision: '1',
      podSelector: r() < 0.2 ? SELECT_ALL : sel({ app: pick(APPS) }),
      policyTypes: { ingress: true, egress },
      ingress: rules(1 + Math.floor(r() * 3)),
      egress: egress ? rules(1 + Math.floor(r() * 2)) : [],
      source: NO_SOURCE,
    });
  }

  const rest = size.policies - npCount;
  for (let i = 0; i < rest; i++) {
    const kindRoll = i % 4;
    const kind: ClusterPolicyKind =
      kindRoll === 0
        ? 'MeshNetworkPolicy'
        : kindRoll === 1
          ? 'AdminNetworkPolicy'
          : 'ClusterNetworkPolicy';
    const baseline = kind !== 'AdminNetworkPolicy' && r() < 0.3;
    const mesh = kind === 'MeshNetworkPolicy';
    const actions: RuleAction[] = baseline ? ['Accept', 'Deny'] : ['Accept', 'Deny', 'Pass'];
    const peer = (): ClusterPolicyPeer =>
      r() < 0.7
        ? {
            kind: 'pods',
            namespaceSelector: sel({ team: pick(TEAMS) }),
            podSelector: r() < 0.5 ? SELECT_ALL : sel({ app: pick(APPS) }),
            clusters: mesh ? SELECT_ALL : null,
          }
        : r() < 0.5
          ? { kind: 'nodes', nodeSelector: sel({ role: 'infra' }) }
          : { kind: 'networks', cidrs: ['10.1.0.0/17'] };
    const rules = (n: number): ClusterPolicyRule[] =>
      Array.from({ length: n }, (_, index) => ({
        index,
        name: `rule-${index}`,
        action: pick(actions),
        peers: [peer()],
        ports: randomPorts(),
        source: NO_SOURCE,
      }));
    clusterPolicies.push({
      kind,
      name: `cp-${i}`,
      cluster: mesh ? null : pick(CLUSTERS),
      revision: '1',
      tier: baseline ? 'Baseline' : 'Admin',
      priority: Math.floor(r() * 1000),
      subject: {
        namespaceSelector: sel({ env: pick(['prod', 'dev']) }),
        podSelector: r() < 0.5 ? SELECT_ALL : sel({ app: pick(APPS) }),
        clusters: mesh ? SELECT_ALL : null,
      },
      ingress: rules(1 + Math.floor(r() * 3)),
      egress: rules(Math.floor(r() * 3)),
      mode: mesh && i % 8 === 0 ? 'Audit' : 'Enforce',
      encryptionRequired: mesh && r() < 0.5,
      logging: { allowed: false, denied: mesh },
      source: NO_SOURCE,
    });
  }

  const byName = <T extends { cluster: string | null; name: string; namespace?: string }>(
    a: T,
    b: T,
  ): number =>
    `${a.cluster ?? ''}/${a.namespace ?? ''}/${a.name}` <
    `${b.cluster ?? ''}/${b.namespace ?? ''}/${b.name}`
      ? -1
      : 1;
  return {
    clusters,
    namespaces: namespaces.sort(byName),
    pods: pods.sort(byName),
    nodes: nodes.sort(byName),
    networkPolicies: networkPolicies.sort(byName),
    clusterPolicies: clusterPolicies.sort(byName),
  };
}
