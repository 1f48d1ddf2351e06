/**
 * Indexes a World once so that many probes evaluate fast: every object gets
 * a dense index, every distinct selector is matched once against everything
 * it can select, and each pod knows, per direction, the policies that select
 * it in evaluation order.
 */
import { ipId, nodeId, parseEndpointId, podId, type Endpoint } from '../model/endpoint.js';
import { selectorKey, selectorMatches, type LabelSelector, type Labels } from '../model/labels.js';
import type { NetworkPolicy } from '../model/policy.js';
import {
  CLUSTER_NAME_LABEL,
  NAMESPACE_NAME_LABEL,
  type Node,
  type Pod,
  type World,
} from '../model/world.js';
import { parseIp, type IpAddr } from './ip.js';
import { compileClusterPolicy, compileNetworkPolicy, type CPolicy } from './rules.js';
import { SemanticsError } from './types.js';
import { compareClusterPolicies } from '../model/order.js';

export interface ClusterInfo {
  readonly index: number;
  readonly name: string;
  readonly labels: Labels;
}

export interface NamespaceInfo {
  readonly index: number;
  readonly cluster: ClusterInfo;
  readonly name: string;
  readonly labels: Labels;
}

/** A pod as the evaluator sees it. */
export interface PodInfo {
  readonly index: number;
  readonly pod: Pod;
  readonly cluster: ClusterInfo;
  readonly namespace: NamespaceInfo;
  /** IP keys of the node the pod runs on (for the NetworkPolicy own-node exemption). */
  readonly nodeIpKeys: ReadonlySet<string>;
}

/** An endpoint resolved for evaluation. */
export interface Ep {
  readonly endpoint: Endpoint;
  readonly id: string;
  /** Set for pods that take part in pod selection (not hostNetwork). */
  readonly pod: PodInfo | null;
  readonly cluster: ClusterInfo | null;
  readonly v4: IpAddr | null;
  readonly v6: IpAddr | null;
}

/** Per pod and direction: the policies that select it, in evaluation order. */
export interface Applicable {
  readonly admin: readonly CPolicy[];
  readonly networkPolicy: readonly CPolicy[];
  readonly baseline: readonly CPolicy[];
  /** Admin and Baseline lists including Audit-mode policies (for the staged verdict). */
  readonly adminWithAudit: readonly CPolicy[];
  readonly baselineWithAudit: readonly CPolicy[];
  /** True when an Audit-mode policy selects the pod and has rules in this direction. */
  readonly hasAudit: boolean;
}

/** A World indexed for evaluation. Treat as opaque (except `world`); build it with prepareWorld. */
export interface PreparedWorld {
  readonly world: World;
  readonly clusters: ReadonlyMap<string, ClusterInfo>;
  /** Key `<cluster>/<namespace>`. */
  readonly namespaces: ReadonlyMap<string, NamespaceInfo>;
  readonly pods: readonly PodInfo[];
  readonly podsById: ReadonlyMap<string, PodInfo>;
  /** IP key → pods with that IP (hostNetwork pods share their node's IPs). */
  readonly podsByIp: ReadonlyMap<string, readonly PodInfo[]>;
  readonly nodesById: ReadonlyMap<string, Node>;
  /** Endpoints of pods and nodes, by id. */
  readonly endpointsById: ReadonlyMap<string, Ep>;
  /** Pods and nodes in world order (pods first), as endpoints. */
  readonly endpoints: readonly Ep[];
  readonly applicable: {
    readonly Ingress: readonly Applicable[];
    readonly Egress: readonly Applicable[];
  };
  /** Policies that could select pods of a cluster (its CNPs and every MNP), tier order. */
  readonly clusterPoliciesByCluster: ReadonlyMap<string, readonly CPolicy[]>;
  /** NetworkPolicies by `<cluster>/<namespace>`, name order. */
  readonly networkPoliciesByNamespace: ReadonlyMap<string, readonly CPolicy[]>;
}

/** Memoized selector results: one boolean array per distinct selector and object set. */
export class SelectorIndex {
  private readonly cache = new Map<string, Uint8Array>();
  constructor(private readonly labels: readonly Labels[]) {}
  matches(sel: LabelSelector): Uint8Array {
    const key = selectorKey(sel);
    let hit = this.cache.get(key);
    if (hit === undefined) {
      hit = new Uint8Array(this.labels.length);
      for (let i = 0; i < this.labels.length; i++) {
        hit[i] = selectorMatches(sel, this.labels[i] as Labels) ? 1 : 0;
      }
      this.cache.set(key, hit);
    }
    return hit;
  }
}

export interface Indexes {
  readonly clusters: readonly ClusterInfo[];
  readonly clusterByName: ReadonlyMap<string, ClusterInfo>;
  readonly namespaces: readonly NamespaceInfo[];
  readonly namespaceByKey: ReadonlyMap<string, NamespaceInfo>;
  readonly pods: readonly PodInfo[];
  readonly podSel: SelectorIndex;
  readonly nsSel: SelectorIndex;
  readonly clusterSel: SelectorIndex;
  /** IP keys of the nodes of `cluster` matching a selector. */
  nodeIps(cluster: string, sel: LabelSelector): ReadonlySet<string>;
}

function familyOf(ips: readonly string[], family: 4 | 6, owner: string): IpAddr | null {
  for (const text of ips) {
    let ip: IpAddr;
    try {
      ip = parseIp(text);
    } catch (e) {
      throw new SemanticsError(`${owner}: ${(e as Error).message}`);
    }
    if (ip.family === family) return ip;
  }
  return null;
}

function compareNetworkPolicies(a: NetworkPolicy, b: NetworkPolicy): number {
  const ka = `${a.cluster}\u0000${a.namespace}\u0000${a.name}`;
  const kb = `${b.cluster}\u0000${b.namespace}\u0000${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function prepareWorld(world: World): PreparedWorld {
  // ---- clusters (declared, and any cluster an object names)
  const clusters: ClusterInfo[] = [];
  const clusterByName = new Map<string, ClusterInfo>();
  const cluster = (name: string, labels?: Labels): ClusterInfo => {
    let c = clusterByName.get(name);
    if (c === undefined) {
      c = {
        index: clusters.length,
        name,
        labels: { ...(labels ?? {}), [CLUSTER_NAME_LABEL]: name },
      };
      clusters.push(c);
      clusterByName.set(name, c);
    }
    return c;
  };
  for (const c of world.clusters) cluster(c.name, c.labels);

  // ---- namespaces
  const namespaces: NamespaceInfo[] = [];
  const namespaceByKey = new Map<string, NamespaceInfo>();
  const namespace = (clusterName: string, name: string, labels?: Labels): NamespaceInfo => {
    const key = `${clusterName}/${name}`;
    let n = namespaceByKey.get(key);
    if (n === undefined) {
      n = {
        index: namespaces.length,
        cluster: cluster(clusterName),
        name,
        labels: { ...(labels ?? {}), [NAMESPACE_NAME_LABEL]: name },
      };
      namespaces.push(n);
      namespaceByKey.set(key, n);
    }
    return n;
  };
  for (const n of world.namespaces) namespace(n.cluster, n.name, n.labels);

  // ---- nodes
  const nodesById = new Map<string, Node>();
  for (const n of world.nodes) {
    cluster(n.cluster);
    const id = nodeId(n);
    if (nodesById.has(id)) throw new SemanticsError(`duplicate node ${id}`);
    nodesById.set(id, n);
  }
  const nodeIpKeys = (n: Node | undefined): Set<string> => {
    const keys = new Set<string>();
    for (const text of n?.ips ?? []) {
      try {
        keys.add(parseIp(text).key);
      } catch (e) {
        throw new SemanticsError(`${nodeId(n as Node)}: ${(e as Error).message}`);
      }
    }
    return keys;
  };

  // ---- pods
  const pods: PodInfo[] = [];
  const podsById = new Map<string, PodInfo>();
  const podsByIp = new Map<string, PodInfo[]>();
  for (const p of world.pods) {
    const id = podId(p);
    if (podsById.has(id)) throw new SemanticsError(`duplicate pod ${id}`);
    const node =
      p.nodeName === null
        ? undefined
        : nodesById.get(nodeId({ cluster: p.cluster, name: p.nodeName }));
    const info: PodInfo = {
      index: pods.length,
      pod: p,
      cluster: cluster(p.cluster),
      namespace: namespace(p.cluster, p.namespace),
      nodeIpKeys: nodeIpKeys(node),
    };
    pods.push(info);
    podsById.set(id, info);
  }

  // ---- endpoints of pods and nodes
  const endpoints: Ep[] = [];
  const endpointsById = new Map<string, Ep>();
  for (const info of pods) {
    const p = info.pod;
    const id = podId(p);
    // hostNetwork pods use their node's addresses (that is where their traffic
    // comes from); pod.ips are the fallback when the node is not in the world.
    const node =
      p.nodeName === null
        ? undefined
        : nodesById.get(nodeId({ cluster: p.cluster, name: p.nodeName }));
    const ips = p.hostNetwork && node !== undefined && node.ips.length > 0 ? node.ips : p.ips;
    const ep: Ep = {
      endpoint: { kind: 'pod', id, pod: p },
      id,
      pod: p.hostNetwork ? null : info,
      cluster: info.cluster,
      v4: familyOf(ips, 4, id),
      v6: familyOf(ips, 6, id),
    };
    endpoints.push(ep);
    endpointsById.set(id, ep);
    for (const ip of [ep.v4, ep.v6]) {
      if (ip === null) continue;
      const list = podsByIp.get(ip.key) ?? [];
      list.push(info);
      podsByIp.set(ip.key, list);
    }
  }
  for (const n of world.nodes) {
    const id = nodeId(n);
    const ep: Ep = {
      endpoint: { kind: 'node', id, node: n },
      id,
      pod: null,
      cluster: cluster(n.cluster),
      v4: familyOf(n.ips, 4, id),
      v6: familyOf(n.ips, 6, id),
    };
    endpoints.push(ep);
    endpointsById.set(id, ep);
  }

  // Namespaces and clusters that only policies name, so every index below covers them.
  for (const p of world.networkPolicies) namespace(p.cluster, p.namespace);
  for (const p of world.clusterPolicies) if (p.cluster !== null) cluster(p.cluster);

  // ---- selector indexes
  const podSel = new SelectorIndex(pods.map((p) => p.pod.labels));
  const nsSel = new SelectorIndex(namespaces.map((n) => n.labels));
  const clusterSel = new SelectorIndex(clusters.map((c) => c.labels));
  const nodesByCluster = new Map<string, Node[]>();
  for (const n of world.nodes) {
    const list = nodesByCluster.get(n.cluster) ?? [];
    list.push(n);
    nodesByCluster.set(n.cluster, list);
  }
  const nodeIpCache = new Map<string, ReadonlySet<string>>();
  const indexes: Indexes = {
    clusters,
    clusterByName,
    namespaces,
    namespaceByKey,
    pods,
    podSel,
    nsSel,
    clusterSel,
    nodeIps(clusterName, sel) {
      const key = `${clusterName}\u0000${selectorKey(sel)}`;
      let hit = nodeIpCache.get(key);
      if (hit === undefined) {
        const keys = new Set<string>();
        for (const n of nodesByCluster.get(clusterName) ?? []) {
          if (selectorMatches(sel, n.labels)) for (const k of nodeIpKeys(n)) keys.add(k);
        }
        hit = keys;
        nodeIpCache.set(key, hit);
      }
      return hit;
    },
  };

  // ---- policies, compiled and sorted in evaluation order
  const cps = [...world.clusterPolicies]
    .sort(compareClusterPolicies)
    .map((p) => compileClusterPolicy(p, indexes));
  const nps = [...world.networkPolicies]
    .sort(compareNetworkPolicies)
    .map((p) => compileNetworkPolicy(p, indexes));

  const clusterPoliciesByCluster = new Map<string, CPolicy[]>();
  for (const c of clusters) {
    clusterPoliciesByCluster.set(
      c.name,
      cps.filter((p) => p.cluster === null || p.cluster === c.name),
    );
  }
  const networkPoliciesByNamespace = new Map<string, CPolicy[]>();
  for (const p of nps) {
    const key = `${p.cluster}/${p.ref.namespace}`;
    const list = networkPoliciesByNamespace.get(key) ?? [];
    list.push(p);
    networkPoliciesByNamespace.set(key, list);
  }

  // ---- per pod and direction, the policies selecting it
  const build = (dir: 'Ingress' | 'Egress'): Applicable[] =>
    pods.map((info) => {
      if (info.pod.hostNetwork) {
        return {
          admin: [],
          networkPolicy: [],
          baseline: [],
          adminWithAudit: [],
          baselineWithAudit: [],
          hasAudit: false,
        };
      }
      const candidates = clusterPoliciesByCluster.get(info.cluster.name) ?? [];
      const selecting = candidates.filter((p) => p.selects(info));
      const admin = selecting.filter((p) => p.tier === 'Admin');
      const baseline = selecting.filter((p) => p.tier === 'Baseline');
      const enforced = (list: CPolicy[]): CPolicy[] => list.filter((p) => p.mode === 'Enforce');
      const npCandidates =
        networkPoliciesByNamespace.get(`${info.cluster.name}/${info.namespace.name}`) ?? [];
      return {
        admin: enforced(admin),
        baseline: enforced(baseline),
        adminWithAudit: admin,
        baselineWithAudit: baseline,
        networkPolicy: npCandidates.filter((p) => p.isolates[dir] && p.selects(info)),
        hasAudit: selecting.some((p) => p.mode === 'Audit' && p.rules[dir].length > 0),
      };
    });

  return {
    world,
    clusters: clusterByName,
    namespaces: namespaceByKey,
    pods,
    podsById,
    podsByIp,
    nodesById,
    endpointsById,
    endpoints,
    applicable: { Ingress: build('Ingress'), Egress: build('Egress') },
    clusterPoliciesByCluster,
    networkPoliciesByNamespace,
  };
}

/** An `ip:<addr>` endpoint; never a pod or node, whatever its address (docs/semantics.md). */
export function externalEp(ipText: string): Ep {
  const ip = parseIp(ipText);
  const id = ipId(ipText);
  return {
    endpoint: { kind: 'external', id, ip: ipText },
    id,
    pod: null,
    cluster: null,
    v4: ip.family === 4 ? ip : null,
    v6: ip.family === 6 ? ip : null,
  };
}

export function resolveEp(prepared: PreparedWorld, id: string): Ep {
  const parsed = parseEndpointId(id);
  if ('error' in parsed) throw new SemanticsError(parsed.error);
  if (parsed.kind === 'external') return externalEp(parsed.ip);
  const ep = prepared.endpointsById.get(id);
  if (ep === undefined) {
    const what = parsed.kind === 'pod' ? 'pod' : 'node';
    throw new SemanticsError(`unknown ${what} "${id}": no such ${what} in the world`);
  }
  return ep;
}
