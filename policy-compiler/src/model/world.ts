/** The decoded world: clusters, namespaces, pods, nodes. Produced by load/, read by everything. */
import type { Labels } from './labels.js';
import type { SourcePos } from './source.js';
import type { NetworkPolicy, ClusterPolicy } from './policy.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/** The cluster of objects without a `palisade.dev/cluster` annotation. */
export const DEFAULT_CLUSTER = 'default';
export const CLUSTER_ANNOTATION = 'palisade.dev/cluster';
/** Label the loader adds to every Cluster, like kubernetes.io/metadata.name on namespaces. */
export const CLUSTER_NAME_LABEL = 'palisade.dev/cluster-name';
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface Cluster {
  readonly name: string;
  readonly labels: Labels;
  readonly podCIDRs: readonly string[];
  readonly serviceCIDRs: readonly string[];
  readonly nodeCIDRs: readonly string[];
  /** Underlay endpoint of the cluster's WireGuard gateway, `address:port`. */
  readonly gateway: { readonly endpoint: string } | null;
  /** False when the loader made it up because an object named a cluster with no Cluster document. */
  readonly declared: boolean;
  readonly source: SourcePos;
}

export interface Namespace {
  readonly cluster: string;
  readonly name: string;
  /** Includes kubernetes.io/metadata.name, as the API server sets it. */
  readonly labels: Labels;
  readonly declared: boolean;
  readonly source: SourcePos;
}

export interface ContainerPort {
  readonly name: string | null;
  readonly containerPort: number;
  readonly protocol: Protocol;
}

export interface Pod {
  readonly cluster: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | null;
  readonly labels: Labels;
  readonly nodeName: string | null;
  readonly hostNetwork: boolean;
  /** status.podIPs (or status.podIP), IPv4 and/or IPv6, canonical text form. */
  readonly ips: readonly string[];
  /** All containers' ports, in document order. */
  readonly ports: readonly ContainerPort[];
  readonly source: SourcePos;
}

export interface Node {
  readonly cluster: string;
  readonly name: string;
  readonly labels: Labels;
  /** status.addresses of type InternalIP/ExternalIP, canonical text form. */
  readonly ips: readonly string[];
  readonly source: SourcePos;
}

/**
 * Everything one offline evaluation needs. Arrays are sorted by
 * (cluster, namespace, name) so every consumer sees one deterministic order.
 */
export interface World {
  readonly clusters: readonly Cluster[];
  readonly namespaces: readonly Namespace[];
  readonly pods: readonly Pod[];
  readonly nodes: readonly Node[];
  readonly networkPolicies: readonly NetworkPolicy[];
  readonly clusterPolicies: readonly ClusterPolicy[];
}
