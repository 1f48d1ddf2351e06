/**
 * Numeric identities, all numbered in one space (compile/allocate.ts):
 * - pod identities: (cluster, namespace, the pod's labels restricted to the
 *   label keys pod selectors use, its named container ports, and — only when
 *   an egress rule with named ports has CIDR peers — the prefixes of those
 *   peers containing the address);
 * - node identities: one per node;
 * - namespace identities: (cluster, the namespace's labels restricted to the
 *   keys namespace selectors use, the cluster's labels restricted to the keys
 *   cluster selectors use); namespaces with equal keys share one;
 * - CIDR identities: one per named policy prefix (cidr and except).
 * The ipcache gives every pod/node address its identity, namespace identity,
 * CIDR identity (longest named prefix containing it) and node number.
 */
import { nodeId, podId } from '../model/endpoint.js';
import { selectorKeys, type LabelSelector, type Labels } from '../model/labels.js';
import type { PortMatches } from '../model/policy.js';
import {
  CLUSTER_NAME_LABEL,
  NAMESPACE_NAME_LABEL,
  type ContainerPort,
  type Pod,
  type World,
} from '../model/world.js';
import { PAL } from '../encode/layout.js';
import { allocateNumbers, type Numbering } from './allocate.js';
import {
  coversV4Space,
  mask,
  parseAddress,
  parsePrefix,
  V4_MAPPED_BASE,
  type Prefix,
} from './addr.js';

export type IdentityKind = 'pod' | 'node' | 'cidr' | 'namespace';

export interface IdentityInfo {
  readonly number: number;
  readonly key: string;
  readonly kind: IdentityKind;
  readonly cluster: string | null;
  /** Pods only. */
  readonly namespace: string | null;
  /** Pods: labels restricted to the keys selectors use; nodes: all labels. */
  readonly labels: Labels;
  /** Namespace identities: namespace / cluster labels restricted to the keys selectors use. */
  readonly nsLabels: Labels;
  readonly clusterLabels: Labels;
  /** Pods: named container ports (destination side of named-port rules). */
  readonly ports: readonly ContainerPort[];
  /** Nodes only: the node's endpoint id. */
  readonly node: string | null;
  /**
   * CIDR identities: the policy prefixes containing the prefix. Pods: the
   * prefixes of egress named-port rules' CIDR peers containing the address.
   */
  readonly cidrs: ReadonlySet<string>;
}

/** Every prefix a policy names (cidr and except), parsed, by canonical text. */
export function policyPrefixes(world: World): Map<string, Prefix> {
  const out = new Map<string, Prefix>();
  const add = (text: string): void => {
    const p = parsePrefix(text);
    out.set(p.text, p);
  };
  for (const np of world.networkPolicies) {
    for (const r of [...np.ingress, ...np.egress]) {
      if (r.peers === 'all') continue;
      for (const peer of r.peers) {
        if (peer.kind !== 'ipBlock') continue;
        add(peer.cidr);
        peer.except.forEach(add);
      }
    }
  }
  for (const cp of world.clusterPolicies) {
    for (const r of [...cp.ingress, ...cp.egress]) {
      for (const peer of r.peers) if (peer.kind === 'networks') peer.cidrs.forEach(add);
    }
  }
  return out;
}

/** Label keys used by any pod selector (policy subjects and pod peers). */
export function podSelectorKeys(world: World): Set<string> {
  const keys = new Set<string>();
  const addSel = (s: LabelSelector): void => {
    for (const k of selectorKeys(s)) keys.add(k);
  };
  for (const np of world.networkPolicies) {
    addSel(np.podSelector);
    for (const r of [...np.ingress, ...np.egress]) {
      if (r.peers !== 'all') for (const p of r.peers) if (p.kind === 'pods') addSel(p.podSelector);
    }
  }
  for (const cp of world.clusterPolicies) {
    addSel(cp.subject.podSelector);
    for (const r of [...cp.ingress, ...cp.egress])
      for (const p of r.peers) if (p.kind === 'pods') addSel(p.podSelector);
  }
  return keys;
}

/** Label keys used by namespace selectors and by cluster selectors. */
export function scopeSelectorKeys(world: World): { ns: Set<string>; cluster: Set<string> } {
  const ns = new Set<string>();
  const cluster = new Set<string>();
  const add = (to: Set<string>, s: LabelSelector | null): void => {
    if (s !== null) for (const k of selectorKeys(s)) to.add(k);
  };
  for (const np of world.networkPolicies) {
    for (const r of [...np.ingress, ...np.egress]) {
      if (r.peers !== 'all')
        for (const p of r.peers) if (p.kind === 'pods') add(ns, p.namespaceSelector);
    }
  }
  for (const cp of world.clusterPolicies) {
    add(ns, cp.subject.namespaceSelector);
    add(cluster, cp.subject.clusters);
    for (const r of [...cp.ingress, ...cp.egress])
      for (const p of r.peers)
        if (p.kind === 'pods') {
          add(ns, p.namespaceSelector);
          add(cluster, p.clusters);
        }
  }
  return { ns, cluster };
}

/**
 * Prefixes (cidr and except) of CIDR peers of egress rules that use named
 * ports: such a rule's named ports resolve on the destination pod, so it is
 * represented under pod identities, which must then tell these prefixes apart.
 */
export function namedEgressPrefixes(world: World): Map<string, Prefix> {
  const out = new Map<string, Prefix>();
  const add = (text: string): void => {
    const p = parsePrefix(text);
    out.set(p.text, p);
  };
  const named = (ports: PortMatches): boolean =>
    ports !== 'all' && ports.some((p) => p.kind === 'named');
  for (const np of world.networkPolicies) {
    if (!np.policyTypes.egress) continue;
    for (const r of np.egress) {
      if (r.peers === 'all' || !named(r.ports)) continue;
      for (const peer of r.peers) {
        if (peer.kind !== 'ipBlock') continue;
        add(peer.cidr);
        peer.except.forEach(add);
      }
    }
  }
  for (const cp of world.clusterPolicies) {
    for (const r of cp.egress) {
      if (!named(r.ports)) continue;
      for (const peer of r.peers) if (peer.kind === 'networks') peer.cidrs.forEach(add);
    }
  }
  return out;
}

/** Prefix lookup by length: which named prefixes contain an address. */
export class PrefixSet {
  private readonly byLen = new Map<number, Map<bigint, Prefix>>();
  private readonly lens: number[];
  constructor(prefixes: Iterable<Prefix>) {
    for (const p of prefixes) {
      let m = this.byLen.get(p.len);
      if (m === undefined) this.byLen.set(p.len, (m = new Map()));
      m.set(p.net, p);
    }
    this.lens = [...this.byLen.keys()].sort((a, b) => a - b);
  }
  /** Prefixes of `family` containing n, up to length maxLen. */
  containing(n: bigint, family: 4 | 6, maxLen = 128): Prefix[] {
    const out: Prefix[] = [];
    for (const len of this.lens) {
      if (len > maxLen) break;
      const p = this.byLen.get(len)?.get(n & mask(len));
      if (p !== undefined && p.family === family) out.push(p);
    }
    return out;
  }
}

export const sigText = (ps: readonly Prefix[]): string =>
  ps
    .map((p) => p.text)
    .sort()
    .join(',');

export function projectLabels(labels: Labels, keys: ReadonlySet<string>): Labels {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) if (keys.has(k)) out[k] = labels[k] as string;
  return out;
}

export const namedPorts = (pod: Pod): ContainerPort[] =>
  pod.ports
    .filter((p) => p.name !== null)
    .map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: p.protocol }))
    .sort((a, b) =>
      `${a.name}/${a.protocol}/${a.containerPort}`.localeCompare(
        `${b.name}/${b.protocol}/${b.containerPort}`,
      ),
    );

/** The pod part of a pod identity key (the address signature follows). */
export const podKeyBase = (pod: Pod, labels: Labels, ports: readonly ContainerPort[]): string =>
  `pod|${pod.cluster}|${pod.namespace}|${JSON.stringify(labels)}|${JSON.stringify(ports.map((p) => [p.name, p.protocol, p.containerPort]))}`;

export const namespaceIdentityKey = (cluster: string, nl: Labels, cl: Labels): string =>
  `ns|${cluster}|${JSON.stringify(nl)}|${JSON.stringify(cl)}`;

export interface AddressIdentity {
  readonly address: string;
  readonly n: bigint;
  readonly family: 4 | 6;
  /** Identity key. */
  readonly key: string;
  /** Namespace identity key (pods). */
  readonly nsKey: string | null;
  /** CIDR identity key of the longest named policy prefix containing the address. */
  readonly cidrKey: string | null;
  readonly owner: string;
  readonly kind: 'pod' | 'node';
}

export interface IdentityResult {
  readonly identities: ReadonlyMap<string, IdentityInfo>;
  readonly byNumber: ReadonlyMap<number, IdentityInfo>;
  readonly numbering: Numbering;
  /** Addresses of pods and nodes with the identity key each maps to. */
  readonly addresses: readonly AddressIdentity[];
  /** Named prefix text → identity key of its region (null = WORLD). */
  readonly prefixKeys: ReadonlyMap<string, string | null>;
  /** Endpoint id of each non-hostNetwork pod and each node → identity key of its primary address. */
  readonly endpointKeys: ReadonlyMap<string, string>;
  readonly prefixes: ReadonlyMap<string, Prefix>;
  /** ::ffff:0:0/96 needs an explicit WORLD entry (an IPv6 policy prefix covers the IPv4 block). */
  readonly v4SpaceWorld: boolean;
  /** Node endpoint id → node number (1..), stable like identities. */
  readonly nodeNumbers: Numbering;
  /** Non-hostNetwork pod id → the identity keys it creates (pod keys and its namespace key). */
  readonly podKeys: ReadonlyMap<string, readonly string[]>;
}

/** The key of the CIDR identity of an address: the named prefixes containing its longest one; null = none. */
function cidrKeyOf(set: PrefixSet, n: bigint, family: 4 | 6): string | null {
  const c = set.containing(n, family);
  const longest = c[c.length - 1];
  return longest === undefined
    ? null
    : `cidr|${sigText(set.containing(longest.net, family, longest.len))}`;
}

const NO_LABELS: Labels = {};

/** A pod identity's draft; `sig` lists the egress named-port prefixes containing the address. */
function podIdentityDraft(
  key: string,
  pod: Pod,
  labels: Labels,
  ports: IdentityDraft['ports'],
  sig: string,
): IdentityDraft {
  return {
    key,
    kind: 'pod',
    cluster: pod.cluster,
    namespace: pod.namespace,
    labels,
    nsLabels: NO_LABELS,
    clusterLabels: NO_LABELS,
    ports,
    node: null,
    cidrs: new Set(sig === '' ? [] : sig.split(',')),
  };
}

export class IdentityError extends Error {
  override name = 'IdentityError';
}

type Draft = Omit<IdentityInfo, 'number'>;

/**
 * Allocates identities for a world. Pure: given the previous numbering, an
 * identity whose key is unchanged keeps its number.
 */
export function allocate(
  world: World,
  previous?: Numbering,
  previousNodes?: Numbering,
): IdentityResult {
  const keys = podSelectorKeys(world);
  const scope = scopeSelectorKeys(world);
  const prefixes = policyPrefixes(world);
  const set = new PrefixSet(prefixes.values());
  const namedSet = new PrefixSet(namedEgressPrefixes(world).values());
  const drafts = new Map<string, Draft>();
  const addresses: AddressIdentity[] = [];
  const endpointKeys = new Map<string, string>();
  const owners = new Map<bigint, string>();
  const podKeys = new Map<string, readonly string[]>();

  const claim = (n: bigint, owner: string, text: string): void => {
    const prev = owners.get(n);
    if (prev !== undefined && prev !== owner) {
      throw new IdentityError(
        `address ${text} is used by both ${prev} and ${owner} (the datapath maps one address to one identity)`,
      );
    }
    owners.set(n, owner);
  };
  const parse = (text: string, owner: string): { family: 4 | 6; n: bigint } => {
    try {
      return parseAddress(text);
    } catch (e) {
      throw new IdentityError(`${owner}: ${(e as Error).message}`);
    }
  };

  for (const node of world.nodes) {
    const id = nodeId(node);
    const key = `node|${id}`;
    drafts.set(key, {
      key,
      kind: 'node',
      cluster: node.cluster,
      namespace: null,
      labels: node.labels,
      nsLabels: NO_LABELS,
      clusterLabels: NO_LABELS,
      ports: [],
      node: id,
      cidrs: new Set(),
    });
    for (const text of node.ips) {
      const a = parse(text, id);
      claim(a.n, id, text);
      addresses.push({
        address: text,
        n: a.n,
        family: a.family,
        key,
        nsKey: null,
        cidrKey: cidrKeyOf(set, a.n, a.family),
        owner: id,
        kind: 'node',
      });
    }
    endpointKeys.set(id, key);
  }

  const clusterLabels = new Map<string, Labels>();
  for (const c of world.clusters)
    clusterLabels.set(c.name, { ...c.labels, [CLUSTER_NAME_LABEL]: c.name });
  const nsLabels = new Map<string, Labels>();
  for (const n of world.namespaces)
    nsLabels.set(`${n.cluster}/${n.name}`, { ...n.labels, [NAMESPACE_NAME_LABEL]: n.name });
  const nsKeyMemo = new Map<string, string>();
  const namespaceKey = (cluster: string, ns: string): string => {
    const memoKey = `${cluster}/${ns}`;
    const hit = nsKeyMemo.get(memoKey);
    if (hit !== undefined) return hit;
    const nl = projectLabels(nsLabels.get(memoKey) ?? { [NAMESPACE_NAME_LABEL]: ns }, scope.ns);
    const cl = projectLabels(
      clusterLabels.get(cluster) ?? { [CLUSTER_NAME_LABEL]: cluster },
      scope.cluster,
    );
    const key = namespaceIdentityKey(cluster, nl, cl);
    if (!drafts.has(key)) {
      drafts.set(key, {
        key,
        kind: 'namespace',
        cluster,
        namespace: null,
        labels: NO_LABELS,
        nsLabels: nl,
        clusterLabels: cl,
        ports: [],
        node: null,
        cidrs: new Set(),
      });
    }
    nsKeyMemo.set(memoKey, key);
    return key;
  };

  for (const pod of world.pods) {
    if (pod.hostNetwork) continue; // seen as its node's (or its own) address, never as a pod
    const id = podId(pod);
    const labels = projectLabels(pod.labels, keys);
    const ports = namedPorts(pod);
    const base = podKeyBase(pod, labels, ports);
    const nsKey = namespaceKey(pod.cluster, pod.namespace);
    let primary: string | null = null;
    const mk = (sig: string): string => {
      const key = `${base}|${sig}`;
      if (!drafts.has(key)) drafts.set(key, podIdentityDraft(key, pod, labels, ports, sig));
      return key;
    };
    for (const text of pod.ips) {
      const a = parse(text, id);
      claim(a.n, id, text);
      const key = mk(sigText(namedSet.containing(a.n, a.family)));
      addresses.push({
        address: text,
        n: a.n,
        family: a.family,
        key,
        nsKey,
        cidrKey: cidrKeyOf(set, a.n, a.family),
        owner: id,
        kind: 'pod',
      });
      primary ??= key;
    }
    endpointKeys.set(id, primary ?? mk(''));
    const mine = new Set<string>([nsKey, endpointKeys.get(id) as string]);
    for (let i = addresses.length - pod.ips.length; i < addresses.length; i++)
      mine.add((addresses[i] as AddressIdentity).key);
    podKeys.set(id, [...mine]);
  }

  // One CIDR identity per named prefix (keyed by the prefixes containing it).
  const prefixKeys = new Map<string, string | null>();
  let v4SpaceWorld = false;
  for (const p of prefixes.values()) {
    const sig = sigText(set.containing(p.net, p.family, p.len));
    const key = `cidr|${sig}`;
    if (!drafts.has(key)) {
      drafts.set(key, {
        key,
        kind: 'cidr',
        cluster: null,
        namespace: null,
        labels: NO_LABELS,
        nsLabels: NO_LABELS,
        clusterLabels: NO_LABELS,
        ports: [],
        node: null,
        cidrs: new Set(sig.split(',')),
      });
    }
    prefixKeys.set(p.text, key);
    if (coversV4Space(p)) v4SpaceWorld = true;
  }
  // 0.0.0.0/0 itself already gives the IPv4 block its own entry.
  if (
    v4SpaceWorld &&
    [...prefixes.values()].some((p) => p.family === 4 && p.len === 96 && p.net === V4_MAPPED_BASE)
  ) {
    v4SpaceWorld = false;
  }

  const numbering = allocateNumbers(drafts.keys(), previous, PAL.ID_FIRST_ALLOCATED);
  const identities = new Map<string, IdentityInfo>();
  const byNumber = new Map<number, IdentityInfo>();
  for (const [key, d] of drafts) {
    const info: IdentityInfo = { ...d, number: numbering.get(key) as number };
    identities.set(key, info);
    byNumber.set(info.number, info);
  }
  const nodeNumbers = allocateNumbers(
    world.nodes.map((n) => nodeId(n)),
    previousNodes,
    1,
  );
  return {
    identities,
    byNumber,
    numbering,
    addresses,
    prefixKeys,
    endpointKeys,
    prefixes,
    v4SpaceWorld,
    nodeNumbers,
    podKeys,
  };
}

/** One pod's identity keys, as allocate() gives them (for a pod-only recompile). */
export interface PodIdentityKeys {
  /** Per address, in `pod.ips` order. */
  readonly addresses: readonly {
    readonly n: bigint;
    readonly family: 4 | 6;
    readonly key: string;
    readonly cidrKey: string | null;
  }[];
  readonly primary: string;
  readonly nsKey: string;
  /** Distinct keys the pod creates (as IdentityResult.podKeys). */
  readonly keys: readonly string[];
  /** The identity (without its number) of each of `keys`, as allocate() builds it. */
  readonly drafts: ReadonlyMap<string, IdentityDraft>;
}

export type IdentityDraft = Omit<IdentityInfo, 'number'>;

/**
 * Computes identity keys of single pods with allocate()'s formulas, for a
 * world whose policies, namespaces and clusters are fixed (what the keys
 * depend on besides the pod). Throws IdentityError / AddressError on a bad address.
 */
export class PodKeyer {
  private readonly keys: Set<string>;
  private readonly scope: { ns: Set<string>; cluster: Set<string> };
  private set: PrefixSet;
  private readonly namedSet: PrefixSet;
  private readonly nsMemo = new Map<string, { key: string; draft: IdentityDraft }>();
  private readonly nsLabels = new Map<string, Labels>();
  private readonly clusterLabels = new Map<string, Labels>();
  constructor(world: World) {
    for (const c of world.clusters)
      this.clusterLabels.set(c.name, { ...c.labels, [CLUSTER_NAME_LABEL]: c.name });
    for (const n of world.namespaces)
      this.nsLabels.set(`${n.cluster}/${n.name}`, { ...n.labels, [NAMESPACE_NAME_LABEL]: n.name });
    this.keys = podSelectorKeys(world);
    this.scope = scopeSelectorKeys(world);
    this.set = new PrefixSet(policyPrefixes(world).values());
    this.namedSet = new PrefixSet(namedEgressPrefixes(world).values());
  }
  /** The policy prefixes changed (a policy recompile): CIDR keys of addresses follow them. */
  setPrefixes(set: PrefixSet): void {
    this.set = set;
  }
  private nsKey(cluster: string, ns: string): { key: string; draft: IdentityDraft } {
    const memoKey = `${cluster}/${ns}`;
    const hit = this.nsMemo.get(memoKey);
    if (hit !== undefined) return hit;
    const nl = projectLabels(
      this.nsLabels.get(memoKey) ?? { [NAMESPACE_NAME_LABEL]: ns },
      this.scope.ns,
    );
    const cl = projectLabels(
      this.clusterLabels.get(cluster) ?? { [CLUSTER_NAME_LABEL]: cluster },
      this.scope.cluster,
    );
    const key = namespaceIdentityKey(cluster, nl, cl);
    const out = {
      key,
      draft: {
        key,
        kind: 'namespace' as const,
        cluster,
        namespace: null,
        labels: {},
        nsLabels: nl,
        clusterLabels: cl,
        ports: [],
        node: null,
        cidrs: new Set<string>(),
      },
    };
    this.nsMemo.set(memoKey, out);
    return out;
  }
  keysOf(pod: Pod): PodIdentityKeys {
    const labels = projectLabels(pod.labels, this.keys);
    const ports = namedPorts(pod);
    const base = podKeyBase(pod, labels, ports);
    const ns = this.nsKey(pod.cluster, pod.namespace);
    const nsKey = ns.key;
    const drafts = new Map<string, IdentityDraft>([[nsKey, ns.draft]]);
    const podDraft = (sig: string): string => {
      const key = `${base}|${sig}`;
      if (!drafts.has(key)) drafts.set(key, podIdentityDraft(key, pod, labels, ports, sig));
      return key;
    };
    const addresses = pod.ips.map((text) => {
      const a = parseAddress(text);
      const cidrKey = cidrKeyOf(this.set, a.n, a.family);
      return {
        n: a.n,
        family: a.family,
        key: podDraft(sigText(this.namedSet.containing(a.n, a.family))),
        cidrKey,
      };
    });
    const primary = addresses[0]?.key ?? podDraft('');
    const keys = new Set<string>([nsKey, primary]);
    for (const a of addresses) keys.add(a.key);
    return { addresses, primary, nsKey, keys: [...keys], drafts };
  }
}
