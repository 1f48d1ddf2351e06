/**
 * Policies after decoding and defaulting. Every upstream kind lands in one of
 * two shapes: NetworkPolicy (the namespaced tier) or ClusterPolicy (Admin and
 * Baseline tiers: ClusterNetworkPolicy v1alpha2, AdminNetworkPolicy and
 * BaselineAdminNetworkPolicy v1alpha1, MeshNetworkPolicy).
 */
import type { LabelSelector } from './labels.js';
import type { SourcePos } from './source.js';
import type { Protocol } from './world.js';

export type Direction = 'Ingress' | 'Egress';

/** One port condition of a rule. Ports are 1..65535; ranges are inclusive. */
export type PortMatch =
  | { readonly kind: 'all'; readonly protocol: Protocol }
  | {
      readonly kind: 'range';
      readonly protocol: Protocol;
      readonly start: number;
      readonly end: number;
    }
  /**
   * Resolved on the destination pod's container ports. `protocol: 'any'` is
   * CNP's destinationNamedPort, which matches the named port whatever its protocol.
   */
  | { readonly kind: 'named'; readonly protocol: Protocol | 'any'; readonly name: string };

/** 'all' = the rule does not look at protocol or port. */
export type PortMatches = readonly PortMatch[] | 'all';

// ---------------------------------------------------------------- NetworkPolicy

export type NetworkPolicyPeer =
  | {
      readonly kind: 'pods';
      /** null = the policy's own namespace (podSelector-only peer). */
      readonly namespaceSelector: LabelSelector | null;
      readonly podSelector: LabelSelector;
    }
  | { readonly kind: 'ipBlock'; readonly cidr: string; readonly except: readonly string[] };

export interface NetworkPolicyRule {
  readonly index: number;
  /** 'all' = `from`/`to` absent or empty: every peer, in and out of the cluster. */
  readonly peers: readonly NetworkPolicyPeer[] | 'all';
  /** 'all' = `ports` absent or empty. */
  readonly ports: PortMatches;
  readonly source: SourcePos;
}

export interface NetworkPolicy {
  readonly kind: 'NetworkPolicy';
  readonly cluster: string;
  readonly namespace: string;
  readonly name: string;
  /** metadata.generation when given, else a hash of the spec. */
  readonly revision: string;
  readonly podSelector: LabelSelector;
  /** After upstream defaulting of spec.policyTypes. */
  readonly policyTypes: { readonly ingress: boolean; readonly egress: boolean };
  readonly ingress: readonly NetworkPolicyRule[];
  readonly egress: readonly NetworkPolicyRule[];
  readonly source: SourcePos;
}

// ---------------------------------------------------------- cluster-wide tiers

export type Tier = 'Admin' | 'Baseline';
export type RuleAction = 'Accept' | 'Deny' | 'Pass';
export type PolicyMode = 'Enforce' | 'Audit';

export type ClusterPolicyKind =
  | 'MeshNetworkPolicy'
  | 'ClusterNetworkPolicy'
  | 'AdminNetworkPolicy'
  | 'BaselineAdminNetworkPolicy';

export type ClusterPolicyPeer =
  | {
      /** `namespaces` peers decode to this with podSelector = select-all. */
      readonly kind: 'pods';
      readonly namespaceSelector: LabelSelector;
      readonly podSelector: LabelSelector;
      /** MeshNetworkPolicy only; null = the subject pod's own cluster. */
      readonly clusters: LabelSelector | null;
    }
  | { readonly kind: 'nodes'; readonly nodeSelector: LabelSelector }
  | { readonly kind: 'networks'; readonly cidrs: readonly string[] }
  | { readonly kind: 'domainNames'; readonly names: readonly string[] };

export interface ClusterPolicyRule {
  readonly index: number;
  /** Rule name, '' when unnamed. */
  readonly name: string;
  /** v1alpha1 `Allow` is decoded to `Accept`. */
  readonly action: RuleAction;
  readonly peers: readonly ClusterPolicyPeer[];
  readonly ports: PortMatches;
  readonly source: SourcePos;
}

export interface ClusterPolicySubject {
  readonly namespaceSelector: LabelSelector;
  readonly podSelector: LabelSelector;
  /** MeshNetworkPolicy only; null = every cluster (CNP/ANP/BANP: their own cluster). */
  readonly clusters: LabelSelector | null;
}

export interface ClusterPolicy {
  readonly kind: ClusterPolicyKind;
  readonly name: string;
  /** The cluster a CNP/ANP/BANP lives in; null for MeshNetworkPolicy (mesh-wide). */
  readonly cluster: string | null;
  readonly revision: string;
  readonly tier: Tier;
  /** 0..1000; BaselineAdminNetworkPolicy has none upstream and is given 1000 (see docs/semantics.md). */
  readonly priority: number;
  readonly subject: ClusterPolicySubject;
  readonly ingress: readonly ClusterPolicyRule[];
  readonly egress: readonly ClusterPolicyRule[];
  /** Enforce unless a MeshNetworkPolicy says Audit. */
  readonly mode: PolicyMode;
  /** MeshNetworkPolicy `encryption: Required`. */
  readonly encryptionRequired: boolean;
  readonly logging: { readonly allowed: boolean; readonly denied: boolean };
  readonly source: SourcePos;
}

export type Policy = NetworkPolicy | ClusterPolicy;
