/**
 * Policies turned into matchers: subject selection, peer matching and port
 * matching, each a small function over prepared indexes. The comments cite
 * the upstream sentence each matcher encodes; docs/semantics.md has the rest.
 */
import {
  clusterRuleRef,
  networkRuleRef,
  type Decision,
  type RuleRef,
  type TierName,
} from '../engine.js';
import type {
  ClusterPolicy,
  ClusterPolicyPeer,
  ClusterPolicyRule,
  Direction,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyRule,
  PolicyMode,
  PortMatch,
  PortMatches,
  RuleAction,
} from '../model/policy.js';
import type { Protocol } from '../model/world.js';
import { cidrContains, parseCidr, type Cidr, type IpAddr } from './ip.js';
import type { Ep, Indexes, PodInfo } from './prepare.js';
import { SemanticsError, type PolicyRef } from './types.js';

/** Does the peer end of a probe (endpoint + the address used) match? `subject` is the pod the policy applies to. */
export type PeerMatcher = (peer: Ep, ip: IpAddr, subject: PodInfo) => boolean;
/** Does (protocol, port) towards `dst` match? */
export type PortMatcher = (protocol: Protocol, port: number, dst: Ep) => boolean;

export interface CRule {
  readonly ref: RuleRef;
  readonly action: RuleAction | 'Allow';
  /** The Decision this rule gives when it decides (shared object). */
  readonly decision: Decision;
  /** null = every peer (NetworkPolicy rule without from/to). */
  readonly peers: readonly PeerMatcher[] | null;
  /** null = every protocol and port. */
  readonly ports: readonly PortMatcher[] | null;
}

export interface CPolicy {
  readonly ref: PolicyRef;
  readonly tier: TierName;
  /** Cluster of the object; null for MeshNetworkPolicy. */
  readonly cluster: string | null;
  readonly mode: PolicyMode;
  selects(pod: PodInfo): boolean;
  /** NetworkPolicy: isolation per policyTypes. Cluster policies: always true. */
  readonly isolates: { readonly Ingress: boolean; readonly Egress: boolean };
  readonly rules: { readonly Ingress: readonly CRule[]; readonly Egress: readonly CRule[] };
}

// ------------------------------------------------------------------ ports

function portMatcher(pm: PortMatch): PortMatcher {
  switch (pm.kind) {
    case 'all':
      return (protocol) => protocol === pm.protocol;
    case 'range': {
      const { start, end } = pm;
      return (protocol, port) => protocol === pm.protocol && port >= start && port <= end;
    }
    case 'named':
      // Named ports are resolved on the destination pod's container ports
      // (name + protocol). Nodes, external IPs and hostNetwork pods (seen as
      // their node) have no named ports, so a named port never matches them.
      return (protocol, port, dst) => {
        if (dst.pod === null) return false;
        for (const cp of dst.pod.pod.ports) {
          if (
            cp.name === pm.name &&
            cp.protocol === protocol &&
            cp.containerPort === port &&
            (pm.protocol === 'any' || pm.protocol === cp.protocol)
          ) {
            return true;
          }
        }
        return false;
      };
  }
}

function portMatchers(ports: PortMatches): PortMatcher[] | null {
  return ports === 'all' ? null : ports.map(portMatcher);
}

// ------------------------------------------------------------------ CIDRs

function cidr(text: string, where: string): Cidr {
  try {
    return parseCidr(text);
  } catch (e) {
    throw new SemanticsError(`${where}: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------- NetworkPolicy

function npPeer(
  np: NetworkPolicy,
  peer: NetworkPolicyPeer,
  ix: Indexes,
  where: string,
): PeerMatcher {
  if (peer.kind === 'ipBlock') {
    // ipBlock: the address is in cidr and in none of except. It is tested on
    // any address, pod addresses included (docs/semantics.md).
    const block = cidr(peer.cidr, where);
    const except = peer.except.map((e) => cidr(e, where));
    return (_peer, ip) => cidrContains(block, ip) && !except.some((e) => cidrContains(e, ip));
  }
  const podMatch = ix.podSel.matches(peer.podSelector);
  if (peer.namespaceSelector === null) {
    // podSelector only: pods in the policy's own namespace.
    const own = ix.namespaceByKey.get(`${np.cluster}/${np.namespace}`);
    const ownIndex = own === undefined ? -1 : own.index;
    return (p) =>
      p.pod !== null && p.pod.namespace.index === ownIndex && podMatch[p.pod.index] === 1;
  }
  // namespaceSelector (and podSelector, ANDed): pods of matching namespaces
  // of the policy's own cluster.
  const nsMatch = ix.nsSel.matches(peer.namespaceSelector);
  const clusterName = np.cluster;
  return (p) =>
    p.pod !== null &&
    p.pod.cluster.name === clusterName &&
    nsMatch[p.pod.namespace.index] === 1 &&
    podMatch[p.pod.index] === 1;
}

function npRule(np: NetworkPolicy, dir: Direction, rule: NetworkPolicyRule, ix: Indexes): CRule {
  const ref = networkRuleRef(np, dir, rule);
  const where = `NetworkPolicy ${np.cluster}/${np.namespace}/${np.name} ${dir.toLowerCase()}[${rule.index}]`;
  return {
    ref,
    action: 'Allow',
    decision: { kind: 'rule', rule: ref, action: 'Allow' },
    peers: rule.peers === 'all' ? null : rule.peers.map((p) => npPeer(np, p, ix, where)),
    ports: portMatchers(rule.ports),
  };
}

export function compileNetworkPolicy(np: NetworkPolicy, ix: Indexes): CPolicy {
  const podMatch = ix.podSel.matches(np.podSelector);
  const ns = ix.namespaceByKey.get(`${np.cluster}/${np.namespace}`);
  const nsIndex = ns === undefined ? -1 : ns.index;
  return {
    ref: {
      kind: 'NetworkPolicy',
      cluster: np.cluster,
      namespace: np.namespace,
      name: np.name,
      revision: np.revision,
      tier: 'NetworkPolicy',
      priority: null,
      mode: 'Enforce',
    },
    tier: 'NetworkPolicy',
    cluster: np.cluster,
    mode: 'Enforce',
    // spec.podSelector selects pods of the policy's namespace; hostNetwork
    // pods are never selected (they are not isolated by NetworkPolicy).
    selects: (pod) =>
      !pod.pod.hostNetwork && pod.namespace.index === nsIndex && podMatch[pod.index] === 1,
    isolates: { Ingress: np.policyTypes.ingress, Egress: np.policyTypes.egress },
    rules: {
      Ingress: np.policyTypes.ingress ? np.ingress.map((r) => npRule(np, 'Ingress', r, ix)) : [],
      Egress: np.policyTypes.egress ? np.egress.map((r) => npRule(np, 'Egress', r, ix)) : [],
    },
  };
}

// ---------------------------------------------------- cluster-wide policies

function cpPeer(
  cp: ClusterPolicy,
  peer: ClusterPolicyPeer,
  ix: Indexes,
  where: string,
): PeerMatcher {
  switch (peer.kind) {
    case 'pods': {
      // namespaces / pods peers: pods (never hostNetwork ones) of the
      // subject's cluster, or of the clusters a MeshNetworkPolicy selects.
      const podMatch = ix.podSel.matches(peer.podSelector);
      const nsMatch = ix.nsSel.matches(peer.namespaceSelector);
      if (peer.clusters === null) {
        return (p, _ip, subject) =>
          p.pod !== null &&
          p.pod.cluster === subject.cluster &&
          nsMatch[p.pod.namespace.index] === 1 &&
          podMatch[p.pod.index] === 1;
      }
      const clusterMatch = ix.clusterSel.matches(peer.clusters);
      return (p) =>
        p.pod !== null &&
        clusterMatch[p.pod.cluster.index] === 1 &&
        nsMatch[p.pod.namespace.index] === 1 &&
        podMatch[p.pod.index] === 1;
    }
    case 'nodes': {
      // nodes: "selects the nodeIPs ... by matching on the IPs present in the
      // node.Status.Addresses field" of nodes of the subject's cluster. So
      // hostNetwork pods (which use those IPs) match too.
      const sel = peer.nodeSelector;
      const byCluster: (ReadonlySet<string> | undefined)[] = [];
      return (_p, ip, subject) => {
        let ips = byCluster[subject.cluster.index];
        if (ips === undefined) {
          ips = ix.nodeIps(subject.cluster.name, sel);
          byCluster[subject.cluster.index] = ips;
        }
        return ips.has(ip.key);
      };
    }
    case 'networks': {
      // networks: "cluster-internal traffic will be checked against the rule as well".
      const cidrs = peer.cidrs.map((c) => cidr(c, where));
      return (_p, ip) => cidrs.some((c) => cidrContains(c, ip));
    }
    case 'domainNames':
      // Offline there is no DNS: a domain name never matches an IP address.
      return () => false;
  }
}

function cpRule(cp: ClusterPolicy, dir: Direction, rule: ClusterPolicyRule, ix: Indexes): CRule {
  const ref = clusterRuleRef(cp, dir, rule);
  const where = `${cp.kind} ${cp.name} ${dir.toLowerCase()}[${rule.index}]`;
  const action = rule.action;
  return {
    ref,
    action,
    decision:
      action === 'Pass'
        ? { kind: 'default', verdict: 'Allow', isolatedBy: [] } // never used as a decision
        : { kind: 'rule', rule: ref, action },
    peers: rule.peers.map((p) => cpPeer(cp, p, ix, where)),
    ports: portMatchers(rule.ports),
  };
}

export function compileClusterPolicy(cp: ClusterPolicy, ix: Indexes): CPolicy {
  const podMatch = ix.podSel.matches(cp.subject.podSelector);
  const nsMatch = ix.nsSel.matches(cp.subject.namespaceSelector);
  const clusterMatch =
    cp.subject.clusters === null ? null : ix.clusterSel.matches(cp.subject.clusters);
  const own = cp.cluster;
  return {
    ref: {
      kind: cp.kind,
      cluster: cp.cluster,
      namespace: null,
      name: cp.name,
      revision: cp.revision,
      tier: cp.tier,
      priority: cp.priority,
      mode: cp.mode,
    },
    tier: cp.tier,
    cluster: cp.cluster,
    mode: cp.mode,
    // "host-networked pods are not included in subject selection". A CNP
    // selects pods of its own cluster; a MeshNetworkPolicy those of the
    // clusters its subject selects (every cluster when absent).
    selects: (pod) =>
      !pod.pod.hostNetwork &&
      (own === null || pod.cluster.name === own) &&
      (clusterMatch === null || clusterMatch[pod.cluster.index] === 1) &&
      nsMatch[pod.namespace.index] === 1 &&
      podMatch[pod.index] === 1,
    isolates: { Ingress: true, Egress: true },
    rules: {
      Ingress: cp.ingress.map((r) => cpRule(cp, 'Ingress', r, ix)),
      Egress: cp.egress.map((r) => cpRule(cp, 'Egress', r, ix)),
    },
  };
}
