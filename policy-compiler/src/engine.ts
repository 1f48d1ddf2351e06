/**
 * What every engine (reference semantics, compiled-table simulator, real
 * datapath) answers for one probe. The three must agree on `verdict`,
 * `decidedBy` and `staged` of both directions, always; the reference engine
 * adds the decision path on top (see semantics/).
 */
import type { EndpointId } from './model/endpoint.js';
import type {
  ClusterPolicy,
  ClusterPolicyKind,
  ClusterPolicyRule,
  Direction,
  NetworkPolicy,
  NetworkPolicyRule,
  RuleAction,
} from './model/policy.js';
import type { Protocol } from './model/world.js';

export type EngineName = 'reference' | 'compiled' | 'datapath';

export interface Probe {
  readonly from: EndpointId;
  readonly to: EndpointId;
  readonly protocol: Protocol;
  readonly port: number;
}

export type Verdict = 'Allow' | 'Deny';

/** Evaluation order of tiers within one direction. */
export type TierName = 'Admin' | 'NetworkPolicy' | 'Baseline';

/** A rule, named the way flow records and explanations name it. */
export interface RuleRef {
  readonly kind: ClusterPolicyKind | 'NetworkPolicy';
  /** Cluster of the policy object; null for MeshNetworkPolicy (mesh-wide). */
  readonly cluster: string | null;
  /** Namespace of a NetworkPolicy; null for cluster-scoped kinds. */
  readonly namespace: string | null;
  readonly name: string;
  readonly revision: string;
  readonly tier: TierName;
  /** null for NetworkPolicy. */
  readonly priority: number | null;
  readonly direction: Direction;
  readonly ruleIndex: number;
  /** '' when unnamed (NetworkPolicy rules have no names). */
  readonly ruleName: string;
}

/** The RuleRef of one rule of a cluster-wide policy (CNP, ANP, BANP, MNP). */
export function clusterRuleRef(
  cp: ClusterPolicy,
  direction: Direction,
  rule: ClusterPolicyRule,
): RuleRef {
  return {
    kind: cp.kind,
    cluster: cp.cluster,
    namespace: null,
    name: cp.name,
    revision: cp.revision,
    tier: cp.tier,
    priority: cp.priority,
    direction,
    ruleIndex: rule.index,
    ruleName: rule.name,
  };
}

/** The RuleRef of one rule of a NetworkPolicy (its rules have no names). */
export function networkRuleRef(
  np: NetworkPolicy,
  direction: Direction,
  rule: NetworkPolicyRule,
): RuleRef {
  return {
    kind: 'NetworkPolicy',
    cluster: np.cluster,
    namespace: np.namespace,
    name: np.name,
    revision: np.revision,
    tier: 'NetworkPolicy',
    priority: null,
    direction,
    ruleIndex: rule.index,
    ruleName: '',
  };
}

export type Decision =
  | {
      readonly kind: 'rule';
      readonly rule: RuleRef;
      readonly action: Exclude<RuleAction, 'Pass'> | 'Allow';
    }
  /**
   * No rule decided. `isolatedBy` names the NetworkPolicies that isolate the
   * pod for this direction (a default deny always says who isolated it);
   * empty with verdict Allow = nothing applies (Kubernetes default allow).
   */
  | {
      readonly kind: 'default';
      readonly verdict: Verdict;
      readonly isolatedBy: readonly { readonly namespace: string; readonly name: string }[];
    };

export interface DirectionVerdict {
  readonly verdict: Verdict;
  readonly decidedBy: Decision;
  /**
   * The verdict if Audit-mode MeshNetworkPolicies were enforced; null when
   * no Audit policy applies to this direction of the probe.
   */
  readonly staged: { readonly verdict: Verdict; readonly decidedBy: Decision } | null;
}

export interface ProbeVerdict {
  readonly probe: Probe;
  /** Allow only when egress at the source and ingress at the destination both allow. */
  readonly verdict: Verdict;
  readonly egress: DirectionVerdict;
  readonly ingress: DirectionVerdict;
}
