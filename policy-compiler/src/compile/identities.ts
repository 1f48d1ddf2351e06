/**
 * Numeric identities. An identity is an equivalence class of addresses that
 * no selector in use can tell apart:
 * - pod addresses: (cluster, namespace, the pod's labels restricted to the
 *   label keys pod selectors use, its named container ports, the policy CIDRs
 *   containing the address);
 * - node addresses: (node, the policy CIDRs containing the address);
 * - every other address: the set of policy CIDRs containing it (a CIDR
 *   identity per named prefix; no CIDR at all = WORLD, no ipcache entry).
 * The CIDR part is per address, so a dual-stack pod whose IPv4 and IPv6
 * addresses fall in different CIDRs has two identities.
 */
import { nodeId, podId } from '../model/endpoint.js';
import { selectorKeys, type LabelSelector, type Labels } from '../model/labels.js';
import type { ContainerPort, Node, Pod, World } from '../model/world.js';
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

export type IdentityKind = 'pod' | 'node' | 'cidr';

export interface IdentityInfo {
  readonly number: number;
  readonly key: string;
  readonly kind: IdentityKind;
  readonly cluster: string | null;
  /** Pods only. */
  readonly namespace: string | null;
  /** Pods: labels restricted to the keys selectors use; nodes: all labels. */
  readonly labels: Labels;
  /** Pods: named container ports (destination side of named-port rules). */
  readonly ports: readonly ContainerPort[];
  /** Nodes only: the node's endpoint id. */
  readonly node: string | null;
  /** Canonical texts of the policy prefixes containing the address(es). */
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

const sigText = (ps: readonly Prefix[]): string =>
  ps
    .map((p) => p.text)
    .sort()
    .join(',');

export function projectLabels(labels: Labels, keys: ReadonlySet<string>): Labels {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) if (keys.has(k)) out[k] = labels[k] as string;
  return out;
}

const namedPorts = (pod: Pod): ContainerPort[] =>
  pod.ports
    .filter((p) => p.name !== null)
    .map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: p.protocol }))
    .sort((a, b) =>
      `${a.name}/${a.protocol}/${a.containerPort}`.localeCompare(
        `${b.name}/${b.protocol}/${b.containerPort}`,
      ),
    );

export interface AddressIdentity {
  readonly address: string;
  readonly n: bigint;
  readonly family: 4 | 6;
  /** Identity key. */
  readonly key: string;
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
}

export class IdentityError extends Error {
  override name = 'IdentityError';
}

type Draft = Omit<IdentityInfo, 'number'>;

/**
 * Allocates identities for a world. Pure: given the previous numbering, an
 * identity whose key is unchanged keeps its number.
 */
export function allocate(world: World, previous?: Numbering): IdentityResult {
  const keys = podSelectorKeys(world);
  const prefixes = policyPrefixes(world);
  const set = new PrefixSet(prefixes.values());
  const drafts = new Map<string, Draft>();
  const addresses: AddressIdentity[] = [];
  const endpointKeys = new Map<string, string>();
  const owners = new Map<bigint, string>();

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

  const nodesById = new Map<string, Node>();
  for (const node of world.nodes) {
    const id = nodeId(node);
    nodesById.set(id, node);
    let primary: string | null = null;
    for (const text of node.ips) {
      const a = parse(text, id);
      claim(a.n, id, text);
      const sig = sigText(set.containing(a.n, a.family));
      const key = `node|${id}|${sig}`;
      if (!drafts.has(key)) {
        drafts.set(key, {
          key,
          kind: 'node',
          cluster: node.cluster,
          namespace: null,
          labels: node.labels,
          ports: [],
          node: id,
          cidrs: new Set(sig === '' ? [] : sig.split(',')),
        });
      }
      addresses.push({ address: text, n: a.n, family: a.family, key, owner: id, kind: 'node' });
      primary ??= key;
    }
    if (primary === null) {
      primary = `node|${id}|`;
      if (!drafts.has(primary)) {
        drafts.set(primary, {
          key: primary,
          kind: 'node',
          cluster: node.cluster,
          namespace: null,
          labels: node.labels,
          ports: [],
          node: id,
          cidrs: new Set(),
        });
      }
    }
    endpointKeys.set(id, primary);
  }

  for (const pod of world.pods) {
    if (pod.hostNetwork) continue; // seen as its node's (or its own) address, never as a pod
    const id = podId(pod);
    const labels = projectLabels(pod.labels, keys);
    const ports = namedPorts(pod);
    const base = `pod|${pod.cluster}|${pod.namespace}|${JSON.stringify(labels)}|${JSON.stringify(ports.map((p) => [p.name, p.protocol, p.containerPort]))}`;
    let primary: string | null = null;
    const mk = (sig: string): string => {
      const key = `${base}|${sig}`;
      if (!drafts.has(key)) {
        drafts.set(key, {
          key,
          kind: 'pod',
          cluster: pod.cluster,
          namespace: pod.namespace,
          labels,
          ports,
          node: null,
          cidrs: new Set(sig === '' ? [] : sig.split(',')),
        });
      }
      return key;
    };
    for (const text of pod.ips) {
      const a = parse(text, id);
      claim(a.n, id, text);
      const key = mk(sigText(set.containing(a.n, a.family)));
      addresses.push({ address: text, n: a.n, family: a.family, key, owner: id, kind: 'pod' });
      primary ??= key;
    }
    endpointKeys.set(id, primary ?? mk(''));
  }

  // One CIDR identity per distinct set of prefixes containing a named prefix.
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
        labels: {},
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
  return {
    identities,
    byNumber,
    numbering,
    addresses,
    prefixKeys,
    endpointKeys,
    prefixes,
    v4SpaceWorld,
  };
}
