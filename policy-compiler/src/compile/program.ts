/**
 * Policies as the compiler evaluates them: rules with cookies and peer
 * matchers over identities, and per pod and direction the ordered program
 * (Admin rules, NetworkPolicy rules and isolation, Baseline rules) that its
 * subject class shares.
 */
import { clusterRuleRef, networkRuleRef, type RuleRef } from '../engine.js';
import {
  isSelectAll,
  selectorKey,
  selectorMatches,
  type LabelSelector,
  type Labels,
} from '../model/labels.js';
import type {
  ClusterPolicy,
  ClusterPolicyPeer,
  Direction,
  NetworkPolicy,
  NetworkPolicyPeer,
  PortMatches,
} from '../model/policy.js';
import { CLUSTER_NAME_LABEL, NAMESPACE_NAME_LABEL, type Pod, type World } from '../model/world.js';
import { PAL } from '../encode/layout.js';
import { allocateNumbers, type Numbering } from './allocate.js';
import { podSelectorKeys, type IdentityInfo } from './identities.js';
import { compareClusterPolicies } from '../model/order.js';

/** The kind of policy key a rule peer is represented under (docs/compiler.md). */
export type KeyKind = 'pod' | 'namespace' | 'cidr' | 'node' | 'never';

export interface PeerMatcher {
  /** Canonical text: equal keys match the same identities. */
  readonly key: string;
  /** Whether the answer depends on the subject's cluster (else memoized across clusters). */
  readonly subjectCluster?: boolean;
  /** Identities of this kind are the keys this peer's entries are under. */
  readonly kind: KeyKind;
  /** Only pod identities of this namespace can match (evaluation skips the others). */
  readonly scope?: { readonly cluster: string; readonly namespace: string };
  /** Whether the peer matches an identity of `kind`. */
  match(id: IdentityInfo, subjectCluster: string): boolean;
  /**
   * Whether the peer matches a pod identity: egress rules with named ports are
   * represented under pod identities too (the port resolves on the destination pod).
   */
  matchPod(id: IdentityInfo, subjectCluster: string): boolean;
}

export interface CRule {
  readonly cookie: number;
  readonly ref: RuleRef;
  readonly action: 'Accept' | 'Deny' | 'Pass' | 'Allow';
  /** null = every peer (NetworkPolicy rule without from/to). */
  readonly peers: readonly PeerMatcher[] | null;
  readonly ports: PortMatches;
  readonly usesNamedPorts: boolean;
  /** PAL_POL_F_* when this rule decides. */
  readonly flags: number;
}

export interface CPolicy {
  readonly id: string;
  readonly tier: 'Admin' | 'NetworkPolicy' | 'Baseline';
  readonly audit: boolean;
  readonly rules: { readonly Ingress: readonly CRule[]; readonly Egress: readonly CRule[] };
  readonly np: NetworkPolicy | null;
  readonly cp: ClusterPolicy | null;
}

export interface Labelled {
  readonly clusterLabels: (cluster: string) => Labels;
  readonly namespaceLabels: (cluster: string, ns: string) => Labels;
  /** Canonical text of a policy CIDR (as identities name the prefixes containing an address). */
  readonly prefix: (text: string) => string;
}

export function labelLookups(world: World, prefix: (text: string) => string): Labelled {
  const clusters = new Map<string, Labels>();
  for (const c of world.clusters)
    clusters.set(c.name, { ...c.labels, [CLUSTER_NAME_LABEL]: c.name });
  const namespaces = new Map<string, Labels>();
  for (const n of world.namespaces)
    namespaces.set(`${n.cluster}/${n.name}`, { ...n.labels, [NAMESPACE_NAME_LABEL]: n.name });
  return {
    clusterLabels: (c) => clusters.get(c) ?? { [CLUSTER_NAME_LABEL]: c },
    namespaceLabels: (c, ns) => namespaces.get(`${c}/${ns}`) ?? { [NAMESPACE_NAME_LABEL]: ns },
    prefix,
  };
}

const npKey = (p: NetworkPolicy): string => `${p.cluster}\u0000${p.namespace}\u0000${p.name}`;
export const cpId = (p: ClusterPolicy): string => `${p.kind}/${p.cluster ?? '*'}/${p.name}`;
export const npId = (p: NetworkPolicy): string =>
  `NetworkPolicy/${p.cluster}/${p.namespace}/${p.name}`;
const ruleKey = (policyId: string, dir: Direction, index: number): string =>
  `${policyId}/${dir}/${index}`;

/** Every rule's cookie key, for the stable cookie numbering. */
export function ruleKeys(world: World): string[] {
  const out: string[] = [];
  for (const p of world.networkPolicies) {
    p.ingress.forEach((r) => out.push(ruleKey(npId(p), 'Ingress', r.index)));
    p.egress.forEach((r) => out.push(ruleKey(npId(p), 'Egress', r.index)));
  }
  for (const p of world.clusterPolicies) {
    p.ingress.forEach((r) => out.push(ruleKey(cpId(p), 'Ingress', r.index)));
    p.egress.forEach((r) => out.push(ruleKey(cpId(p), 'Egress', r.index)));
  }
  return out;
}

export function allocateCookies(world: World, previous?: Numbering): Map<string, number> {
  return allocateNumbers(ruleKeys(world), previous, 1);
}

const usesNamed = (ports: PortMatches): boolean =>
  ports !== 'all' && ports.some((p) => p.kind === 'named');

function npPeer(np: NetworkPolicy, peer: NetworkPolicyPeer, L: Labelled): PeerMatcher {
  if (peer.kind === 'ipBlock') {
    const cidr = L.prefix(peer.cidr);
    const except = peer.except.map(L.prefix);
    const inBlock = (id: IdentityInfo): boolean =>
      id.cidrs.has(cidr) && !except.some((e) => id.cidrs.has(e));
    return {
      key: `ipblock|${cidr}|${except.join(',')}`,
      kind: 'cidr',
      match: (id) => id.kind === 'cidr' && inBlock(id),
      matchPod: (id) => id.kind === 'pod' && inBlock(id),
    };
  }
  const ps = peer.podSelector;
  if (peer.namespaceSelector === null) {
    const m = (id: IdentityInfo): boolean =>
      id.kind === 'pod' &&
      id.cluster === np.cluster &&
      id.namespace === np.namespace &&
      selectorMatches(ps, id.labels);
    return {
      key: `np-own|${np.cluster}|${np.namespace}|${selectorKey(ps)}`,
      kind: 'pod',
      scope: { cluster: np.cluster, namespace: np.namespace },
      match: m,
      matchPod: m,
    };
  }
  const ns = peer.namespaceSelector;
  const pod = (id: IdentityInfo): boolean =>
    id.kind === 'pod' &&
    id.cluster === np.cluster &&
    selectorMatches(ns, L.namespaceLabels(id.cluster, id.namespace as string)) &&
    selectorMatches(ps, id.labels);
  if (isSelectAll(ps)) {
    return {
      key: `np-ns|${np.cluster}|${selectorKey(ns)}|*`,
      kind: 'namespace',
      match: (id) =>
        id.kind === 'namespace' && id.cluster === np.cluster && selectorMatches(ns, id.nsLabels),
      matchPod: pod,
    };
  }
  return {
    key: `np-ns|${np.cluster}|${selectorKey(ns)}|${selectorKey(ps)}`,
    kind: 'pod',
    match: pod,
    matchPod: pod,
  };
}

const NEVER = (): boolean => false;

function cpPeer(peer: ClusterPolicyPeer, L: Labelled): PeerMatcher {
  switch (peer.kind) {
    case 'pods': {
      const ns = peer.namespaceSelector;
      const ps = peer.podSelector;
      const cl = peer.clusters;
      const base = (id: IdentityInfo): boolean =>
        id.kind === 'pod' &&
        selectorMatches(ns, L.namespaceLabels(id.cluster as string, id.namespace as string)) &&
        selectorMatches(ps, id.labels);
      const pod =
        cl === null
          ? (id: IdentityInfo, sc: string): boolean => id.cluster === sc && base(id)
          : (id: IdentityInfo): boolean =>
              base(id) && selectorMatches(cl, L.clusterLabels(id.cluster as string));
      const where = cl === null ? 'own' : selectorKey(cl);
      if (isSelectAll(ps)) {
        const nsMatch = (id: IdentityInfo, sc: string): boolean =>
          id.kind === 'namespace' &&
          (cl === null ? id.cluster === sc : selectorMatches(cl, id.clusterLabels)) &&
          selectorMatches(ns, id.nsLabels);
        return {
          key: `cp-pods|${where}|${selectorKey(ns)}|*`,
          subjectCluster: cl === null,
          kind: 'namespace',
          match: nsMatch,
          matchPod: pod,
        };
      }
      return {
        key: `cp-pods|${where}|${selectorKey(ns)}|${selectorKey(ps)}`,
        subjectCluster: cl === null,
        kind: 'pod',
        match: pod,
        matchPod: pod,
      };
    }
    case 'nodes': {
      const sel: LabelSelector = peer.nodeSelector;
      return {
        key: `cp-nodes|${selectorKey(sel)}`,
        subjectCluster: true,
        kind: 'node',
        match: (id, sc) =>
          id.kind === 'node' && id.cluster === sc && selectorMatches(sel, id.labels),
        matchPod: NEVER,
      };
    }
    case 'networks': {
      const cidrs = peer.cidrs.map(L.prefix);
      const m = (id: IdentityInfo): boolean => cidrs.some((c) => id.cidrs.has(c));
      return {
        key: `cp-net|${cidrs.join(',')}`,
        kind: 'cidr',
        match: (id) => id.kind === 'cidr' && m(id),
        matchPod: (id) => id.kind === 'pod' && m(id),
      };
    }
    case 'domainNames':
      // Offline there is no DNS: a domain name never matches an address (as the reference).
      return { key: 'never', kind: 'never', match: NEVER, matchPod: NEVER };
  }
}

function decisionFlags(action: CRule['action'], cp: ClusterPolicy | null): number {
  let f = 0;
  if (action === 'Deny') f |= PAL.POL_F_EXPLICIT_DENY;
  if (cp !== null) {
    if (action === 'Accept' && cp.logging.allowed) f |= PAL.POL_F_LOG_ALLOW;
    if (action === 'Deny' && cp.logging.denied) f |= PAL.POL_F_LOG_DENY;
    if (action === 'Accept' && cp.encryptionRequired) f |= PAL.POL_F_ENCRYPT_REQUIRED;
  }
  return f;
}

export function compilePolicies(
  world: World,
  cookies: ReadonlyMap<string, number>,
  L: Labelled,
): { cps: CPolicy[]; nps: CPolicy[] } {
  const cps = [...world.clusterPolicies].sort(compareClusterPolicies).map((cp): CPolicy => {
    const id = cpId(cp);
    const rules = (dir: Direction): CRule[] =>
      (dir === 'Ingress' ? cp.ingress : cp.egress).map((r) => {
        const ref = clusterRuleRef(cp, dir, r);
        return {
          cookie: cookies.get(ruleKey(id, dir, r.index)) as number,
          ref,
          action: r.action,
          peers: r.peers.map((p) => cpPeer(p, L)),
          ports: r.ports,
          usesNamedPorts: usesNamed(r.ports),
          flags: decisionFlags(r.action, cp),
        };
      });
    return {
      id,
      tier: cp.tier,
      audit: cp.mode === 'Audit',
      rules: { Ingress: rules('Ingress'), Egress: rules('Egress') },
      np: null,
      cp,
    };
  });
  const nps = [...world.networkPolicies]
    .sort((a, b) => (npKey(a) < npKey(b) ? -1 : npKey(a) > npKey(b) ? 1 : 0))
    .map((np): CPolicy => {
      const id = npId(np);
      const rules = (dir: Direction): CRule[] => {
        const on = dir === 'Ingress' ? np.policyTypes.ingress : np.policyTypes.egress;
        if (!on) return [];
        return (dir === 'Ingress' ? np.ingress : np.egress).map((r) => {
          const ref = networkRuleRef(np, dir, r);
          return {
            cookie: cookies.get(ruleKey(id, dir, r.index)) as number,
            ref,
            action: 'Allow',
            peers: r.peers === 'all' ? null : r.peers.map((p) => npPeer(np, p, L)),
            ports: r.ports,
            usesNamedPorts: usesNamed(r.ports),
            flags: 0,
          };
        });
      };
      return {
        id,
        tier: 'NetworkPolicy',
        audit: false,
        rules: { Ingress: rules('Ingress'), Egress: rules('Egress') },
        np,
        cp: null,
      };
    });
  return { cps, nps };
}

/** What one direction of one subject class evaluates. */
export interface Program {
  readonly direction: Direction;
  readonly cluster: string;
  readonly admin: readonly CRule[];
  readonly adminStaged: readonly CRule[];
  /** NetworkPolicy rules of the isolating policies, policy then rule order. */
  readonly np: readonly CRule[];
  readonly isolatedBy: readonly { readonly namespace: string; readonly name: string }[];
  readonly baseline: readonly CRule[];
  readonly baselineStaged: readonly CRule[];
  readonly hasAudit: boolean;
  /** Ingress: the subject's named ports (resolution of named-port rules). */
  readonly dstPorts: Pod['ports'];
}

export interface SubjectClass {
  readonly key: string;
  readonly program: Program;
}

export function selectsCp(cp: ClusterPolicy, pod: Pod, L: Labelled): boolean {
  return (
    (cp.cluster === null || pod.cluster === cp.cluster) &&
    (cp.subject.clusters === null ||
      selectorMatches(cp.subject.clusters, L.clusterLabels(pod.cluster))) &&
    selectorMatches(cp.subject.namespaceSelector, L.namespaceLabels(pod.cluster, pod.namespace)) &&
    selectorMatches(cp.subject.podSelector, pod.labels)
  );
}

export interface ClassBuilder {
  classOf(pod: Pod, dir: Direction): SubjectClass;
  /** Memoized label sets and classes (a reuser bounds how large it lets this grow). */
  size(): number;
  /** The class of endpoints no policy applies to (hostNetwork pods), per cluster. */
  unpoliced(cluster: string, dir: Direction): SubjectClass;
  /** The label keys pod selectors use (what a pod's selection depends on). */
  readonly keys: ReadonlySet<string>;
  /** The NetworkPolicies of each namespace (`cluster/namespace`), in order. */
  readonly npsByNs: ReadonlyMap<string, readonly CPolicy[]>;
}

/** The NetworkPolicies of each namespace (`cluster/namespace`), in `nps` order. */
export function npsByNamespace(nps: readonly CPolicy[]): Map<string, CPolicy[]> {
  const out = new Map<string, CPolicy[]>();
  for (const p of nps) {
    const np = p.np as NetworkPolicy;
    const k = `${np.cluster}/${np.namespace}`;
    const list = out.get(k);
    if (list === undefined) out.set(k, [p]);
    else list.push(p);
  }
  return out;
}

export function classBuilder(
  world: World,
  cps: readonly CPolicy[],
  nps: readonly CPolicy[],
  L: Labelled,
  /** podSelectorKeys(world), when the caller has it. */
  selectorKeys?: ReadonlySet<string>,
  /** npsByNamespace(nps), when the caller has it. */
  byNamespace?: ReadonlyMap<string, readonly CPolicy[]>,
): ClassBuilder {
  const keys = selectorKeys ?? podSelectorKeys(world);
  const npsByNs = byNamespace ?? npsByNamespace(nps);
  // The cluster policies whose cluster, cluster selector and namespace
  // selector admit a namespace (their pod selectors are checked per label set).
  const cpsByNs = new Map<string, CPolicy[]>();
  const cpsOf = (cluster: string, ns: string): CPolicy[] => {
    const k = `${cluster}/${ns}`;
    let hit = cpsByNs.get(k);
    if (hit === undefined) {
      const nsLabels = L.namespaceLabels(cluster, ns);
      const clusterLabels = L.clusterLabels(cluster);
      hit = cps.filter((p) => {
        const cp = p.cp as ClusterPolicy;
        return (
          (cp.cluster === null || cluster === cp.cluster) &&
          (cp.subject.clusters === null || selectorMatches(cp.subject.clusters, clusterLabels)) &&
          selectorMatches(cp.subject.namespaceSelector, nsLabels)
        );
      });
      cpsByNs.set(k, hit);
    }
    return hit;
  };
  // Which policies select a pod depends on (cluster, namespace, and its labels
  // restricted to the keys pod selectors use) only.
  const selMemo = new Map<string, { cps: CPolicy[]; nps: CPolicy[] }>();
  // Pod objects are immutable inputs: an unchanged pod (the same object in
  // the next world) skips building its label-set key.
  const byPod = new WeakMap<Pod, { cps: CPolicy[]; nps: CPolicy[] }>();
  const selected = (pod: Pod): { cps: CPolicy[]; nps: CPolicy[] } => {
    const known = byPod.get(pod);
    if (known !== undefined) return known;
    let k = `${pod.cluster}|${pod.namespace}|`;
    for (const l of Object.keys(pod.labels).sort())
      if (keys.has(l)) k += `${JSON.stringify(l)}=${JSON.stringify(pod.labels[l])},`;
    let hit = selMemo.get(k);
    if (hit === undefined) {
      hit = {
        cps: cpsOf(pod.cluster, pod.namespace).filter((p) =>
          selectorMatches((p.cp as ClusterPolicy).subject.podSelector, pod.labels),
        ),
        nps: (npsByNs.get(`${pod.cluster}/${pod.namespace}`) ?? []).filter((p) =>
          selectorMatches((p.np as NetworkPolicy).podSelector, pod.labels),
        ),
      };
      selMemo.set(k, hit);
    }
    byPod.set(pod, hit);
    return hit;
  };
  const memo = new Map<string, SubjectClass>();
  // The class key first (cheap); the program only for a key not seen yet.
  const build = (
    dir: Direction,
    cluster: string,
    sel: { cps: CPolicy[]; nps: CPolicy[] },
    pod: Pod | null,
  ): SubjectClass => {
    const adminAll = sel.cps.filter((p) => p.tier === 'Admin');
    const baseAll = sel.cps.filter((p) => p.tier === 'Baseline');
    const isolating = sel.nps.filter((p) =>
      dir === 'Ingress' ? p.np?.policyTypes.ingress : p.np?.policyTypes.egress,
    );
    const named =
      dir === 'Ingress' &&
      [...adminAll, ...isolating, ...baseAll].some((p) =>
        p.rules.Ingress.some((r) => r.usesNamedPorts),
      );
    const dstPorts = named && pod !== null ? pod.ports : [];
    const portsKey = dstPorts
      .filter((p) => p.name !== null)
      .map((p) => `${p.name}/${p.protocol}/${p.containerPort}`)
      .sort()
      .join(',');
    const key = [
      dir,
      cluster,
      `A:${adminAll.map((p) => p.id).join(',')}`,
      `N:${isolating.map((p) => p.id).join(',')}`,
      `B:${baseAll.map((p) => p.id).join(',')}`,
      `ports:${portsKey}`,
    ].join('|');
    const known = memo.get(key);
    if (known !== undefined) return known;
    const rules = (ps: CPolicy[]): CRule[] => ps.flatMap((p) => p.rules[dir]);
    const enforced = (ps: CPolicy[]): CPolicy[] => ps.filter((p) => !p.audit);
    const hasAudit = sel.cps.some((p) => p.audit && p.rules[dir].length > 0);
    const program: Program = {
      direction: dir,
      cluster,
      admin: rules(enforced(adminAll)),
      adminStaged: rules(adminAll),
      np: rules(isolating),
      isolatedBy: isolating.map((p) => ({
        namespace: (p.np as NetworkPolicy).namespace,
        name: (p.np as NetworkPolicy).name,
      })),
      baseline: rules(enforced(baseAll)),
      baselineStaged: rules(baseAll),
      hasAudit,
      dstPorts,
    };
    const sc = { key, program };
    memo.set(key, sc);
    return sc;
  };
  // A class depends on (direction, cluster, selected policies) and, when an
  // ingress rule of those uses named ports, the pod's ports: memoized per
  // selection (one object per cluster/namespace/label set) so pods sharing
  // one skip building the program.
  const bySelection = new WeakMap<object, Map<string, SubjectClass>>();
  const classOfPod = new WeakMap<Pod, Partial<Record<Direction, SubjectClass>>>();
  return {
    keys,
    npsByNs,
    size: () => selMemo.size + memo.size,
    classOf(pod, dir) {
      const mine = classOfPod.get(pod);
      const known = mine?.[dir];
      if (known !== undefined) return known;
      const sel = selected(pod);
      let per = bySelection.get(sel);
      if (per === undefined) bySelection.set(sel, (per = new Map()));
      const named =
        dir === 'Ingress' &&
        [...sel.cps, ...sel.nps].some((p) => p.rules.Ingress.some((r) => r.usesNamedPorts));
      const k = named ? `${dir}|${JSON.stringify(pod.ports)}` : dir;
      let hit = per.get(k);
      if (hit === undefined) {
        hit = build(dir, pod.cluster, sel, pod);
        per.set(k, hit);
      }
      if (mine === undefined) classOfPod.set(pod, { [dir]: hit });
      else mine[dir] = hit;
      return hit;
    },
    unpoliced(cluster, dir) {
      return build(dir, cluster, { cps: [], nps: [] }, null);
    },
  };
}
