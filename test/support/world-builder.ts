/**
 * Builds model World objects in tests without YAML. Small on purpose: plain
 * functions that fill in defaults the way the loader does, and `buildWorld`
 * that adds the clusters and namespaces objects name and sorts everything.
 *
 *   const w = buildWorld({
 *     pods: [pod('prod/web', { labels: { app: 'web' }, ip: '10.0.0.1' })],
 *     networkPolicies: [np('prod/deny', { ingress: [] })],
 *   });
 */
import {
  CLUSTER_NAME_LABEL,
  DEFAULT_CLUSTER,
  NAMESPACE_NAME_LABEL,
  NO_SOURCE,
  SELECT_ALL,
  type Cluster,
  type ClusterPolicy,
  type ClusterPolicyKind,
  type ClusterPolicyPeer,
  type ClusterPolicyRule,
  type ContainerPort,
  type LabelSelector,
  type Labels,
  type Namespace,
  type NetworkPolicy,
  type NetworkPolicyPeer,
  type NetworkPolicyRule,
  type Node,
  type Pod,
  type PolicyMode,
  type PortMatch,
  type PortMatches,
  type Protocol,
  type RuleAction,
  type SelectorRequirement,
  type Tier,
  type World,
} from '../../policy-compiler/src/model/index.js';

/** `{a: 'b'}` → matchLabels; optional expressions. */
export function sel(
  matchLabels: Record<string, string> = {},
  matchExpressions: SelectorRequirement[] = [],
): LabelSelector {
  return { matchLabels, matchExpressions };
}
export const ALL = SELECT_ALL;

/** Splits `[cluster/]namespace/name` (namespaced) or `[cluster/]name`. */
function split(path: string, parts: 2 | 3): string[] {
  const p = path.split('/');
  if (p.length === parts - 1) return [DEFAULT_CLUSTER, ...p];
  if (p.length === parts) return p;
  throw new Error(`world-builder: bad name "${path}"`);
}

export function cluster(name: string, labels: Labels = {}): Cluster {
  return {
    name,
    labels: { ...labels, [CLUSTER_NAME_LABEL]: name },
    podCIDRs: [],
    serviceCIDRs: [],
    nodeCIDRs: [],
    gateway: null,
    declared: true,
    source: NO_SOURCE,
  };
}

/** `[cluster/]name` */
export function namespace(path: string, labels: Labels = {}): Namespace {
  const [c, name] = split(path, 2) as [string, string];
  return {
    cluster: c,
    name,
    labels: { ...labels, [NAMESPACE_NAME_LABEL]: name },
    declared: true,
    source: NO_SOURCE,
  };
}

export interface PodOptions {
  labels?: Labels;
  /** One address; or use `ips`. */
  ip?: string;
  ips?: string[];
  node?: string;
  hostNetwork?: boolean;
  /** `{ name: 'http', port: 8080 }`, protocol defaults to TCP. */
  ports?: { name?: string; port: number; protocol?: Protocol }[];
}

/** `[cluster/]namespace/name` */
export function pod(path: string, o: PodOptions = {}): Pod {
  const [c, ns, name] = split(path, 3) as [string, string, string];
  const ports: ContainerPort[] = (o.ports ?? []).map((p) => ({
    name: p.name ?? null,
    containerPort: p.port,
    protocol: p.protocol ?? 'TCP',
  }));
  return {
    cluster: c,
    namespace: ns,
    name,
    uid: null,
    labels: o.labels ?? {},
    nodeName: o.node ?? null,
    hostNetwork: o.hostNetwork ?? false,
    ips: o.ips ?? (o.ip === undefined ? [] : [o.ip]),
    ports,
    source: NO_SOURCE,
  };
}

/** `[cluster/]name` */
export function node(path: string, o: { labels?: Labels; ips?: string[]; ip?: string } = {}): Node {
  const [c, name] = split(path, 2) as [string, string];
  return {
    cluster: c,
    name,
    labels: o.labels ?? {},
    ips: o.ips ?? (o.ip === undefined ? [] : [o.ip]),
    source: NO_SOURCE,
  };
}

// ---------------------------------------------------------------- ports

export const tcp = (port: number, end?: number): PortMatch =>
  end === undefined
    ? { kind: 'range', protocol: 'TCP', start: port, end: port }
    : { kind: 'range', protocol: 'TCP', start: port, end };
export const udp = (port: number, end?: number): PortMatch =>
  end === undefined
    ? { kind: 'range', protocol: 'UDP', start: port, end: port }
    : { kind: 'range', protocol: 'UDP', start: port, end };
export const sctp = (port: number, end?: number): PortMatch =>
  end === undefined
    ? { kind: 'range', protocol: 'SCTP', start: port, end: port }
    : { kind: 'range', protocol: 'SCTP', start: port, end };
export const allPorts = (protocol: Protocol): PortMatch => ({ kind: 'all', protocol });
export const named = (name: string, protocol: Protocol | 'any' = 'TCP'): PortMatch => ({
  kind: 'named',
  protocol,
  name,
});

// ---------------------------------------------------------- NetworkPolicy

export const npPods = (
  podSelector: LabelSelector,
  namespaceSelector: LabelSelector | null = null,
): NetworkPolicyPeer => ({
  kind: 'pods',
  podSelector,
  namespaceSelector,
});
export const ipBlock = (cidr: string, except: string[] = []): NetworkPolicyPeer => ({
  kind: 'ipBlock',
  cidr,
  except,
});

export interface NpRuleSpec {
  /** Absent = all peers. */
  peers?: NetworkPolicyPeer[];
  /** Absent = all ports. */
  ports?: PortMatch[];
}

export interface NpOptions {
  podSelector?: LabelSelector;
  /** Decoded policyTypes; absent = upstream defaulting (Ingress always, Egress when there are egress rules). */
  policyTypes?: ('Ingress' | 'Egress')[];
  ingress?: NpRuleSpec[];
  egress?: NpRuleSpec[];
  revision?: string;
}

function npRules(specs: NpRuleSpec[] | undefined): NetworkPolicyRule[] {
  return (specs ?? []).map((r, index) => ({
    index,
    peers: r.peers === undefined || r.peers.length === 0 ? 'all' : r.peers,
    ports: r.ports === undefined || r.ports.length === 0 ? 'all' : r.ports,
    source: NO_SOURCE,
  }));
}

/** `[cluster/]namespace/name` */
export function np(path: string, o: NpOptions = {}): NetworkPolicy {
  const [c, ns, name] = split(path, 3) as [string, string, string];
  // pkg/apis/networking/v1/defaults.go: Ingress always, Egress when egress rules exist.
  const types =
    o.policyTypes ?? ((o.egress ?? []).length > 0 ? ['Ingress', 'Egress'] : ['Ingress']);
  return {
    kind: 'NetworkPolicy',
    cluster: c,
    namespace: ns,
    name,
    revision: o.revision ?? '1',
    podSelector: o.podSelector ?? SELECT_ALL,
    policyTypes: { ingress: types.includes('Ingress'), egress: types.includes('Egress') },
    ingress: npRules(o.ingress),
    egress: npRules(o.egress),
    source: NO_SOURCE,
  };
}

// ---------------------------------------------------- cluster-wide policies

export const cpPods = (
  namespaceSelector: LabelSelector,
  podSelector: LabelSelector = SELECT_ALL,
  clusters: LabelSelector | null = null,
): ClusterPolicyPeer => ({ kind: 'pods', namespaceSelector, podSelector, clusters });
export const cpNamespaces = (
  namespaceSelector: LabelSelector,
  clusters: LabelSelector | null = null,
): ClusterPolicyPeer => cpPods(namespaceSelector, SELECT_ALL, clusters);
export const cpNodes = (nodeSelector: LabelSelector): ClusterPolicyPeer => ({
  kind: 'nodes',
  nodeSelector,
});
export const cpNetworks = (...cidrs: string[]): ClusterPolicyPeer => ({ kind: 'networks', cidrs });
export const cpDomains = (...names: string[]): ClusterPolicyPeer => ({
  kind: 'domainNames',
  names,
});

export interface CpRuleSpec {
  name?: string;
  action: RuleAction;
  peers: ClusterPolicyPeer[];
  /** Absent = all ports. */
  ports?: PortMatch[];
}

export interface CpOptions {
  kind?: ClusterPolicyKind;
  /** Default: Admin, or Baseline for BaselineAdminNetworkPolicy. */
  tier?: Tier;
  priority?: number;
  /** Cluster of a CNP/ANP/BANP (default `default`); ignored for MeshNetworkPolicy. */
  cluster?: string;
  subject?: { namespaces?: LabelSelector; pods?: LabelSelector; clusters?: LabelSelector | null };
  ingress?: CpRuleSpec[];
  egress?: CpRuleSpec[];
  mode?: PolicyMode;
  revision?: string;
}

function cpRules(specs: CpRuleSpec[] | undefined): ClusterPolicyRule[] {
  return (specs ?? []).map((r, index) => ({
    index,
    name: r.name ?? '',
    action: r.action,
    peers: r.peers,
    ports: (r.ports === undefined ? 'all' : r.ports) as PortMatches,
    source: NO_SOURCE,
  }));
}

export function cp(name: string, o: CpOptions = {}): ClusterPolicy {
  const kind = o.kind ?? 'ClusterNetworkPolicy';
  const mesh = kind === 'MeshNetworkPolicy';
  const tier = o.tier ?? (kind === 'BaselineAdminNetworkPolicy' ? 'Baseline' : 'Admin');
  return {
    kind,
    name,
    cluster: mesh ? null : (o.cluster ?? DEFAULT_CLUSTER),
    revision: o.revision ?? '1',
    tier,
    priority: o.priority ?? (kind === 'BaselineAdminNetworkPolicy' ? 1000 : 0),
    subject: {
      namespaceSelector: o.subject?.namespaces ?? SELECT_ALL,
      podSelector: o.subject?.pods ?? SELECT_ALL,
      clusters: o.subject?.clusters ?? null,
    },
    ingress: cpRules(o.ingress),
    egress: cpRules(o.egress),
    mode: o.mode ?? 'Enforce',
    encryptionRequired: false,
    logging: { allowed: false, denied: false },
    source: NO_SOURCE,
  };
}

export const mnp = (name: string, o: Omit<CpOptions, 'kind' | 'cluster'> = {}): ClusterPolicy =>
  cp(name, { ...o, kind: 'MeshNetworkPolicy' });

// ---------------------------------------------------------------- world

export interface WorldParts {
  clusters?: Cluster[];
  namespaces?: Namespace[];
  pods?: Pod[];
  nodes?: Node[];
  networkPolicies?: NetworkPolicy[];
  clusterPolicies?: ClusterPolicy[];
}

const byKey =
  <T>(key: (t: T) => string) =>
  (a: T, b: T): number => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };

/** A World with every named cluster and namespace present (undeclared ones like the loader makes them), sorted. */
export function buildWorld(parts: WorldParts): World {
  const clusters = new Map<string, Cluster>();
  for (const c of parts.clusters ?? []) clusters.set(c.name, c);
  const namespaces = new Map<string, Namespace>();
  for (const n of parts.namespaces ?? []) namespaces.set(`${n.cluster}/${n.name}`, n);
  const needCluster = (name: string): void => {
    if (!clusters.has(name)) clusters.set(name, { ...cluster(name), declared: false });
  };
  const needNamespace = (c: string, name: string): void => {
    needCluster(c);
    if (!namespaces.has(`${c}/${name}`))
      namespaces.set(`${c}/${name}`, { ...namespace(`${c}/${name}`), declared: false });
  };
  for (const n of parts.namespaces ?? []) needCluster(n.cluster);
  for (const p of parts.pods ?? []) needNamespace(p.cluster, p.namespace);
  for (const n of parts.nodes ?? []) needCluster(n.cluster);
  for (const p of parts.networkPolicies ?? []) needNamespace(p.cluster, p.namespace);
  for (const p of parts.clusterPolicies ?? []) if (p.cluster !== null) needCluster(p.cluster);
  const nsKey = (o: { cluster: string; namespace: string; name: string }): string =>
    `${o.cluster}\u0000${o.namespace}\u0000${o.name}`;
  return {
    clusters: [...clusters.values()].sort(byKey((c) => c.name)),
    namespaces: [...namespaces.values()].sort(byKey((n) => `${n.cluster}\u0000${n.name}`)),
    pods: [...(parts.pods ?? [])].sort(byKey(nsKey)),
    nodes: [...(parts.nodes ?? [])].sort(byKey((n) => `${n.cluster}\u0000${n.name}`)),
    networkPolicies: [...(parts.networkPolicies ?? [])].sort(byKey(nsKey)),
    clusterPolicies: [...(parts.clusterPolicies ?? [])].sort(
      byKey((p) => `${p.cluster ?? ''}\u0000${p.name}`),
    ),
  };
}
