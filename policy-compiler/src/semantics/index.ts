// Reference evaluator: the exact semantics of NetworkPolicy, ClusterNetworkPolicy
// and MeshNetworkPolicy, with an explanation of every verdict (docs/semantics.md).
export { prepareWorld, type PreparedWorld } from './prepare.js';
export { evaluate, evaluateMatrix, endpointsOf, resolveEndpoint } from './evaluate.js';
export { describeDecision, formatExplanation } from './explain.js';
export {
  SemanticsError,
  type DecisionStep,
  type ExplainedDirection,
  type ExplainedVerdict,
  type MatrixOptions,
  type PolicyRef,
  type RuleResult,
  type TierResult,
} from './types.js';
