/**
 * Validated objects → model types, with upstream defaulting. Inputs have
 * passed schema validation, so shapes are trusted here.
 */
import { createHash } from 'node:crypto';
import { canonicalCidr, canonicalIp } from '../cel/net.js';
import {
  CLUSTER_NAME_LABEL,
  NAMESPACE_NAME_LABEL,
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
  type PortMatch,
  type PortMatches,
  type Protocol,
  type RuleAction,
  type SelectorOperator,
  type SourcePos,
} from '../model/index.js';
import type { FieldPath, LocatedDocument } from './located.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- validated JSON */
type J = any;

export interface DecodeContext {
  readonly doc: LocatedDocument;
  /** Path of the object inside the document ([] or ['items', i] in a List). */
  readonly base: FieldPath;
  readonly cluster: string;
}

function pos(ctx: DecodeContext, rel: FieldPath): SourcePos {
  const s = ctx.doc.spanOf([...ctx.base, ...rel]);
  return { file: ctx.doc.file, line: s.line, col: s.col };
}

function labels(v: J): Record<string, string> {
  return { ...((v as Record<string, string> | undefined) ?? {}) };
}

export function selector(v: J): LabelSelector {
  if (!v) return SELECT_ALL;
  return {
    matchLabels: labels(v.matchLabels),
    matchExpressions: ((v.matchExpressions ?? []) as J[]).map((e) => ({
      key: e.key as string,
      operator: e.operator as SelectorOperator,
      values: [...((e.values as string[] | undefined) ?? [])],
    })),
  };
}

function cidrs(v: J): string[] {
  return ((v ?? []) as string[]).map((c) => canonicalCidr(c) ?? c);
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** metadata.generation when set, else a short hash of the canonical spec. */
export function revisionOf(obj: J): string {
  const g = obj.metadata?.generation;
  if (typeof g === 'number') return String(g);
  return createHash('sha256')
    .update(canonicalJson(obj.spec ?? {}))
    .digest('hex')
    .slice(0, 12);
}

// ------------------------------------------------------------------ core

export function decodeCluster(obj: J, ctx: DecodeContext): Cluster {
  const name = obj.metadata.name as string;
  const s = obj.spec ?? {};
  return {
    name,
    labels: { ...labels(obj.metadata.labels), [CLUSTER_NAME_LABEL]: name },
    podCIDRs: cidrs(s.podCIDRs),
    serviceCIDRs: cidrs(s.serviceCIDRs),
    nodeCIDRs: cidrs(s.nodeCIDRs),
    gateway: s.gateway ? { endpoint: s.gateway.endpoint as string } : null,
    declared: true,
    source: pos(ctx, []),
  };
}

export function decodeNamespace(obj: J, ctx: DecodeContext): Namespace {
  const name = obj.metadata.name as string;
  return {
    cluster: ctx.cluster,
    name,
    labels: { ...labels(obj.metadata.labels), [NAMESPACE_NAME_LABEL]: name },
    declared: true,
    source: pos(ctx, []),
  };
}

function uniqueIps(list: string[]): string[] {
  const out: string[] = [];
  for (const ip of list) {
    const c = canonicalIp(ip) ?? ip;
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

export function decodePod(obj: J, ctx: DecodeContext): Pod {
  const st = obj.status ?? {};
  const ips: string[] = [];
  if (Array.isArray(st.podIPs)) for (const e of st.podIPs as J[]) ips.push(e.ip as string);
  if (typeof st.podIP === 'string') ips.unshift(st.podIP);
  const ports: ContainerPort[] = [];
  for (const c of (obj.spec.containers ?? []) as J[]) {
    for (const p of (c.ports ?? []) as J[]) {
      ports.push({
        name: typeof p.name === 'string' ? p.name : null,
        containerPort: p.containerPort as number,
        protocol: (p.protocol ?? 'TCP') as Protocol,
      });
    }
  }
  return {
    cluster: ctx.cluster,
    namespace: (obj.metadata.namespace as string | undefined) ?? 'default',
    name: obj.metadata.name as string,
    uid: typeof obj.metadata.uid === 'string' ? obj.metadata.uid : null,
    labels: labels(obj.metadata.labels),
    nodeName: typeof obj.spec.nodeName === 'string' ? obj.spec.nodeName : null,
    hostNetwork: obj.spec.hostNetwork === true,
    ips: uniqueIps(ips),
    ports,
    source: pos(ctx, []),
  };
}

export function decodeNode(obj: J, ctx: DecodeContext): Node {
  const addrs = ((obj.status?.addresses ?? []) as J[])
    .filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP')
    .map((a) => a.address as string)
    .filter((a) => canonicalIp(a) !== null);
  return {
    cluster: ctx.cluster,
    name: obj.metadata.name as string,
    labels: labels(obj.metadata.labels),
    ips: uniqueIps(addrs),
    source: pos(ctx, []),
  };
}

// -------------------------------------------------------- NetworkPolicy

function npPorts(v: J): PortMatches {
  const list = (v ?? []) as J[];
  if (list.length === 0) return 'all';
  return list.map((p): PortMatch => {
    const protocol = (p.protocol ?? 'TCP') as Protocol;
    if (p.port === undefined) return { kind: 'all', protocol };
    if (typeof p.port === 'string') return { kind: 'named', protocol, name: p.port };
    const start = p.port as number;
    return { kind: 'range', protocol, start, end: (p.endPort as number | undefined) ?? start };
  });
}

function npPeers(v: J): readonly NetworkPolicyPeer[] | 'all' {
  const list = (v ?? []) as J[];
  if (list.length === 0) return 'all';
  return list.map((p): NetworkPolicyPeer => {
    if (p.ipBlock) {
      return {
        kind: 'ipBlock',
        cidr: canonicalCidr(p.ipBlock.cidr) ?? p.ipBlock.cidr,
        except: cidrs(p.ipBlock.except),
      };
    }
    return {
      kind: 'pods',
      namespaceSelector: p.namespaceSelector ? selector(p.namespaceSelector) : null,
      podSelector: selector(p.podSelector),
    };
  });
}

export function decodeNetworkPolicy(obj: J, ctx: DecodeContext): NetworkPolicy {
  const spec = obj.spec ?? {};
  const ingressRules = (spec.ingress ?? []) as J[];
  const egressRules = (spec.egress ?? []) as J[];
  const types = spec.policyTypes as string[] | undefined;
  // Upstream defaulting: Ingress always; Egress when there are egress rules.
  const policyTypes =
    types && types.length > 0
      ? { ingress: types.includes('Ingress'), egress: types.includes('Egress') }
      : { ingress: true, egress: egressRules.length > 0 };
  const rules = (
    list: J[],
    dir: 'ingress' | 'egress',
    peerKey: 'from' | 'to',
  ): NetworkPolicyRule[] =>
    list.map((r, index) => ({
      index,
      peers: npPeers(r[peerKey]),
      ports: npPorts(r.ports),
      source: pos(ctx, ['spec', dir, index]),
    }));
  return {
    kind: 'NetworkPolicy',
    cluster: ctx.cluster,
    namespace: (obj.metadata.namespace as string | undefined) ?? 'default',
    name: obj.metadata.name as string,
    revision: revisionOf(obj),
    podSelector: selector(spec.podSelector),
    policyTypes,
    ingress: rules(ingressRules, 'ingress', 'from'),
    egress: rules(egressRules, 'egress', 'to'),
    source: pos(ctx, []),
  };
}

// ------------------------------------------------------ cluster-wide tiers

function cnpProtocols(v: J): PortMatches {
  const list = (v ?? []) as J[];
  if (list.length === 0) return 'all';
  return list.map((p): PortMatch => {
    if (typeof p.destinationNamedPort === 'string')
      return { kind: 'named', protocol: 'any', name: p.destinationNamedPort };
    const [key, l4] = Object.entries(p)[0] as [string, J];
    const protocol = key.toUpperCase() as Protocol;
    const dp = l4.destinationPort;
    if (!dp) return { kind: 'all', protocol };
    if (typeof dp.number === 'number')
      return { kind: 'range', protocol, start: dp.number, end: dp.number };
    return {
      kind: 'range',
      protocol,
      start: dp.range.start as number,
      end: dp.range.end as number,
    };
  });
}

function anpPorts(v: J): PortMatches {
  const list = (v ?? []) as J[];
  if (list.length === 0) return 'all';
  return list.map((p): PortMatch => {
    if (typeof p.namedPort === 'string')
      return { kind: 'named', protocol: 'any', name: p.namedPort };
    if (p.portNumber) {
      const n = p.portNumber.port as number;
      return {
        kind: 'range',
        protocol: (p.portNumber.protocol ?? 'TCP') as Protocol,
        start: n,
        end: n,
      };
    }
    return {
      kind: 'range',
      protocol: (p.portRange.protocol ?? 'TCP') as Protocol,
      start: p.portRange.start as number,
      end: p.portRange.end as number,
    };
  });
}

function clusterPeer(p: J, mesh: boolean): ClusterPolicyPeer {
  const clusters = mesh && p.clusters ? selector(p.clusters) : null;
  if (p.namespaces)
    return {
      kind: 'pods',
      namespaceSelector: selector(p.namespaces),
      podSelector: SELECT_ALL,
      clusters,
    };
  if (p.pods) {
    return {
      kind: 'pods',
      namespaceSelector: selector(p.pods.namespaceSelector),
      podSelector: selector(p.pods.podSelector),
      clusters,
    };
  }
  if (p.nodes) return { kind: 'nodes', nodeSelector: selector(p.nodes) };
  if (p.networks) return { kind: 'networks', cidrs: cidrs(p.networks) };
  return { kind: 'domainNames', names: [...(p.domainNames as string[])] };
}

const ACTIONS: Record<string, RuleAction> = {
  Accept: 'Accept',
  Allow: 'Accept',
  Deny: 'Deny',
  Pass: 'Pass',
};

export function decodeClusterPolicy(
  kind: ClusterPolicyKind,
  obj: J,
  ctx: DecodeContext,
): ClusterPolicy {
  const spec = obj.spec;
  const mesh = kind === 'MeshNetworkPolicy';
  const v1alpha1 = kind === 'AdminNetworkPolicy' || kind === 'BaselineAdminNetworkPolicy';
  const rules = (dir: 'ingress' | 'egress'): ClusterPolicyRule[] =>
    ((spec[dir] ?? []) as J[]).map((r, index) => ({
      index,
      name: (r.name as string | undefined) ?? '',
      action: ACTIONS[r.action as string] as RuleAction,
      peers: ((dir === 'ingress' ? r.from : r.to) as J[]).map((p) => clusterPeer(p, mesh)),
      ports: v1alpha1 ? anpPorts(r.ports) : cnpProtocols(r.protocols),
      source: pos(ctx, ['spec', dir, index]),
    }));
  const subj = spec.subject;
  const subjectSel = subj.namespaces
    ? { namespaceSelector: selector(subj.namespaces), podSelector: SELECT_ALL }
    : {
        namespaceSelector: selector(subj.pods.namespaceSelector),
        podSelector: selector(subj.pods.podSelector),
      };
  const tier =
    kind === 'AdminNetworkPolicy'
      ? 'Admin'
      : kind === 'BaselineAdminNetworkPolicy'
        ? 'Baseline'
        : spec.tier;
  return {
    kind,
    name: obj.metadata.name as string,
    cluster: mesh ? null : ctx.cluster,
    revision: revisionOf(obj),
    tier,
    priority: kind === 'BaselineAdminNetworkPolicy' ? 1000 : (spec.priority as number),
    subject: { ...subjectSel, clusters: mesh && subj.clusters ? selector(subj.clusters) : null },
    ingress: rules('ingress'),
    egress: rules('egress'),
    mode: mesh && spec.mode === 'Audit' ? 'Audit' : 'Enforce',
    encryptionRequired: mesh && spec.encryption === 'Required',
    logging: {
      allowed: mesh && spec.logging?.allowed === true,
      denied: mesh && spec.logging?.denied === true,
    },
    source: pos(ctx, []),
  };
}

export type { Labels };
