/** Human-readable text of an explained verdict (what `palisade verdict` prints). */
import type { Decision, RuleRef } from '../engine.js';
import type { DecisionStep, ExplainedDirection, ExplainedVerdict, PolicyRef } from './types.js';

function policyName(p: PolicyRef | RuleRef): string {
  if (p.kind === 'NetworkPolicy') return `NetworkPolicy ${p.cluster}/${p.namespace}/${p.name}`;
  const where = p.cluster === null ? 'mesh-wide' : `cluster ${p.cluster}`;
  return `${p.kind} ${p.name} (${where}, priority ${p.priority})`;
}

function ruleName(r: RuleRef): string {
  const label = r.ruleName === '' ? '' : ` "${r.ruleName}"`;
  return `${r.direction.toLowerCase()}[${r.ruleIndex}]${label}`;
}

export function describeDecision(d: Decision): string {
  if (d.kind === 'rule') return `${d.action} by ${policyName(d.rule)} ${ruleName(d.rule)}`;
  if (d.isolatedBy.length === 0) return `${d.verdict} by default (no policy decided)`;
  const who = d.isolatedBy.map((n) => `${n.namespace}/${n.name}`).join(', ');
  return d.verdict === 'Deny'
    ? `Deny by default: isolated by NetworkPolicy ${who} and no rule allows it`
    : `Allow: isolated by NetworkPolicy ${who}, but traffic with the pod's own node is always allowed`;
}

const TIER_TEXT: Record<string, string> = {
  decided: 'decided',
  passed: 'Pass: continue at the NetworkPolicy tier',
  'no-match': 'no rule matched',
  'not-isolated': 'no NetworkPolicy selects the pod for this direction',
  'isolated-deny': 'isolated and no rule allows: deny',
  'node-exempt': "isolated, but the peer is the pod's own node: allow",
  skipped: 'not reached',
};

function describeStep(s: DecisionStep): string {
  switch (s.step) {
    case 'subject':
      return s.subject ? `subject ${s.endpoint}` : `${s.endpoint} is not a subject: ${s.reason}`;
    case 'policy': {
      const name = `  ${policyName(s.policy)}${s.policy.mode === 'Audit' ? ' [Audit]' : ''}`;
      if (!s.selectsSubject) return `${name}: does not select the subject`;
      const rules = s.rules === 0 ? 'no rules for this direction' : `${s.rules} rule(s)`;
      return `${name}: selects the subject, ${rules}`;
    }
    case 'rule': {
      const peer = s.peerMatched
        ? `peer ${s.peerIndex === null ? 'any' : `#${s.peerIndex}`} matches`
        : 'no peer matches';
      const port = s.portMatched
        ? `port ${s.portIndex === null ? 'any' : `#${s.portIndex}`} matches`
        : 'no port matches';
      return `    ${ruleName(s.rule)} ${s.action}: ${peer}, ${port} -> ${s.result}`;
    }
    case 'tier':
      if (s.result === 'passed' && s.tier === 'Baseline') {
        return 'Baseline tier: Pass: the rest of the Baseline tier is skipped';
      }
      return `${s.tier} tier: ${TIER_TEXT[s.result] ?? s.result}`;
    case 'default':
      return `default: ${s.verdict}`;
  }
}

/** Steps of one path as lines: each tier line followed by the policies and rules it considered. */
function pathLines(path: readonly DecisionStep[], indent: string): string[] {
  const lines: string[] = [];
  let pending: string[] = [];
  for (const s of path) {
    if (s.step === 'policy' || s.step === 'rule') {
      pending.push(`${indent}${describeStep(s)}`);
      continue;
    }
    lines.push(`${indent}${describeStep(s)}`, ...pending);
    pending = [];
  }
  return [...lines, ...pending];
}

function direction(name: string, d: ExplainedDirection): string[] {
  const lines = [
    `${name}: ${d.verdict} — ${describeDecision(d.decidedBy)}`,
    ...pathLines(d.path, '  '),
  ];
  if (d.staged !== null) {
    lines.push(
      `  staged (Audit policies enforced): ${d.staged.verdict} — ${describeDecision(d.staged.decidedBy)}`,
      ...pathLines(d.stagedPath ?? [], '    '),
    );
  }
  return lines;
}

export function formatExplanation(v: ExplainedVerdict): string {
  const p = v.probe;
  return [
    `${p.from} -> ${p.to} ${p.protocol}/${p.port} (${v.addresses.from} -> ${v.addresses.to}): ${v.verdict}`,
    ...direction('egress', v.egress),
    ...direction('ingress', v.ingress),
  ].join('\n');
}
