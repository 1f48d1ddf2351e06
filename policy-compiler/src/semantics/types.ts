/**
 * What the reference evaluator answers on top of the engine contract: the
 * decision path of each direction, step by step, printable as text and JSON.
 */
import type { EndpointId } from '../model/endpoint.js';
import type { ClusterPolicyKind, Direction, PolicyMode, RuleAction } from '../model/policy.js';
import type { Protocol } from '../model/world.js';
import type {
  Decision,
  DirectionVerdict,
  ProbeVerdict,
  RuleRef,
  TierName,
  Verdict,
} from '../engine.js';

/** A policy as the path names it. */
export interface PolicyRef {
  readonly kind: ClusterPolicyKind | 'NetworkPolicy';
  readonly cluster: string | null;
  readonly namespace: string | null;
  readonly name: string;
  readonly revision: string;
  readonly tier: TierName;
  readonly priority: number | null;
  readonly mode: PolicyMode;
}

/**
 * How a tier ended:
 * - `decided`: a rule of this tier gave the verdict;
 * - `passed`: a rule said Pass: the rest of the tier is skipped; from Admin
 *   evaluation continues at the NetworkPolicy tier, from Baseline at the default (allow);
 * - `no-match`: no rule of this tier matched, evaluation continues;
 * - `not-isolated`: no NetworkPolicy selects the pod for this direction;
 * - `isolated-deny`: NetworkPolicies isolate the pod and none of their rules matched;
 * - `node-exempt`: isolated, no rule matched, but the peer is the pod's own node
 *   (upstream: traffic to and from the pod's node is always allowed);
 * - `skipped`: not reached because an earlier tier decided.
 */
export type TierResult =
  'decided' | 'passed' | 'no-match' | 'not-isolated' | 'isolated-deny' | 'node-exempt' | 'skipped';

/**
 * How one rule fared:
 * - `decided`: it matched and gave the verdict;
 * - `pass`: it matched with action Pass (the rest of its tier is skipped);
 * - `matched`: a NetworkPolicy rule that matched after another one already allowed;
 * - `no-match`: its peers or its ports did not match.
 */
export type RuleResult = 'decided' | 'pass' | 'matched' | 'no-match';

export type DecisionStep =
  /** Whether this end of the probe is subject to policy in this direction at all. */
  | {
      readonly step: 'subject';
      readonly direction: Direction;
      readonly endpoint: EndpointId;
      readonly subject: boolean;
      readonly reason: string;
    }
  /** A policy considered for the subject, in evaluation order. */
  | {
      readonly step: 'policy';
      readonly tier: TierName;
      readonly policy: PolicyRef;
      readonly selectsSubject: boolean;
      /** Rules the policy has for this direction. */
      readonly rules: number;
    }
  /** A rule considered, in evaluation order. */
  | {
      readonly step: 'rule';
      readonly tier: TierName;
      readonly rule: RuleRef;
      readonly action: RuleAction | 'Allow';
      readonly peerMatched: boolean;
      /** Index of the first matching peer in the rule; null when none or when the rule has no peer list. */
      readonly peerIndex: number | null;
      readonly portMatched: boolean;
      /** Index of the first matching port entry; null when none or the rule has no port list. */
      readonly portIndex: number | null;
      readonly result: RuleResult;
    }
  /** Closes a tier: comes after the policy and rule steps of that tier. */
  | { readonly step: 'tier'; readonly tier: TierName; readonly result: TierResult }
  /** Nothing decided: Kubernetes' default allow. */
  | { readonly step: 'default'; readonly verdict: Verdict };

export interface ExplainedDirection extends DirectionVerdict {
  /** The enforced evaluation: Audit-mode policies are left out. */
  readonly path: readonly DecisionStep[];
  /** The evaluation with Audit-mode policies enforced; null when `staged` is null. */
  readonly stagedPath: readonly DecisionStep[] | null;
}

export interface ExplainedVerdict extends ProbeVerdict {
  readonly egress: ExplainedDirection;
  readonly ingress: ExplainedDirection;
  /** The addresses the probe was evaluated with (one family, see docs/semantics.md). */
  readonly addresses: { readonly from: string; readonly to: string };
}

export interface MatrixOptions {
  readonly ports: readonly { readonly protocol: Protocol; readonly port: number }[];
  readonly externals: readonly string[];
}

export type { Decision };

/** Bad input to the evaluator (unknown endpoint, unprobeable pair, malformed CIDR). */
export class SemanticsError extends Error {
  override name = 'SemanticsError';
}
