/**
 * How policies, rules and decisions are named in text output. One place, so
 * `verdict`, `matrix -o wide` and `diff` say the same thing the same way.
 */
import type { Decision, RuleRef } from '../../../policy-compiler/src/index.js';

type PolicyLike = Pick<RuleRef, 'kind' | 'cluster' | 'namespace' | 'name'>;

const SHORT_KIND: Record<RuleRef['kind'], string> = {
  NetworkPolicy: 'NP',
  ClusterNetworkPolicy: 'CNP',
  AdminNetworkPolicy: 'ANP',
  BaselineAdminNetworkPolicy: 'BANP',
  MeshNetworkPolicy: 'MNP',
};

/** `<cluster>/<namespace>/<name>`, `<cluster>/<name>`, or `<name>` for mesh-wide policies. */
export function policyPath(p: PolicyLike): string {
  return [p.cluster, p.namespace, p.name].filter((s): s is string => s !== null).join('/');
}

/** e.g. `NetworkPolicy east/shop/db`. */
export function policyName(p: PolicyLike): string {
  return `${p.kind} ${policyPath(p)}`;
}

/** e.g. `rule 2 "deny-rest-of-cluster"` or `rule 0` when unnamed. */
export function ruleLabel(r: Pick<RuleRef, 'ruleIndex' | 'ruleName' | 'direction'>): string {
  const name = r.ruleName === '' ? '' : ` "${r.ruleName}"`;
  return `${r.direction.toLowerCase()} rule ${r.ruleIndex}${name}`;
}

/** Long form: `Deny by ClusterNetworkPolicy east/east-pci-guardrail ingress rule 2 "deny-rest-of-cluster" (Admin tier, priority 10)`. */
export function decisionText(d: Decision): string {
  if (d.kind === 'rule') {
    const r = d.rule;
    const prio = r.priority === null ? '' : `, priority ${r.priority}`;
    const verb = d.action === 'Deny' ? 'Deny' : 'Allow';
    return `${verb} by ${policyName(r)} ${ruleLabel(r)} (${r.tier} tier${prio})`;
  }
  const by = d.isolatedBy.map((p) => `${p.namespace}/${p.name}`).join(', ');
  if (d.isolatedBy.length === 0) return `${d.verdict}: no policy decided (Kubernetes default)`;
  return d.verdict === 'Deny'
    ? `Deny: no rule allows it (default deny; isolated by NetworkPolicy ${by})`
    : `Allow: own-node traffic (isolated by NetworkPolicy ${by})`;
}

/** Short form for tables: `CNP east-pci-guardrail#2` / `default-deny(shop/db)` / `default`. */
export function decisionShort(d: Decision): string {
  if (d.kind === 'rule') {
    const r = d.rule;
    const rule = r.ruleName === '' ? `#${r.ruleIndex}` : `#${r.ruleIndex}:${r.ruleName}`;
    const where = r.namespace === null ? r.name : `${r.namespace}/${r.name}`;
    return `${SHORT_KIND[r.kind]} ${where}${rule}`;
  }
  if (d.isolatedBy.length === 0) return `default-${d.verdict.toLowerCase()}`;
  const by = d.isolatedBy.map((p) => `${p.namespace}/${p.name}`).join(',');
  return d.verdict === 'Deny' ? `isolated(${by})` : `own-node(${by})`;
}
