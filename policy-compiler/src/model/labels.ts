/** Kubernetes label maps and label selectors (metav1.LabelSelector), already validated. */

export type Labels = Readonly<Record<string, string>>;

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface SelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  /** Non-empty for In/NotIn, empty for Exists/DoesNotExist (validation enforces it). */
  readonly values: readonly string[];
}

/**
 * A label selector after decoding. All terms are ANDed; an empty selector
 * (no labels, no expressions) selects everything, as in metav1.LabelSelector.
 */
export interface LabelSelector {
  readonly matchLabels: Labels;
  readonly matchExpressions: readonly SelectorRequirement[];
}

export const SELECT_ALL: LabelSelector = Object.freeze({
  matchLabels: Object.freeze({}),
  matchExpressions: Object.freeze([]) as readonly SelectorRequirement[],
});

export function isSelectAll(sel: LabelSelector): boolean {
  return Object.keys(sel.matchLabels).length === 0 && sel.matchExpressions.length === 0;
}

function has(labels: Labels, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(labels, key);
}

function requirementMatches(req: SelectorRequirement, labels: Labels): boolean {
  switch (req.operator) {
    case 'In':
      return has(labels, req.key) && req.values.includes(labels[req.key] as string);
    case 'NotIn':
      // Upstream: NotIn matches when the key is absent too.
      return !has(labels, req.key) || !req.values.includes(labels[req.key] as string);
    case 'Exists':
      return has(labels, req.key);
    case 'DoesNotExist':
      return !has(labels, req.key);
  }
}

export function selectorMatches(sel: LabelSelector, labels: Labels): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels)) {
    if (!has(labels, k) || labels[k] !== v) return false;
  }
  for (const req of sel.matchExpressions) {
    if (!requirementMatches(req, labels)) return false;
  }
  return true;
}

/** Canonical text of a selector, stable across runs: usable as a map key. */
export function selectorKey(sel: LabelSelector): string {
  const labels = Object.keys(sel.matchLabels)
    .sort()
    .map((k) => `${k}=${sel.matchLabels[k]}`);
  const exprs = sel.matchExpressions
    .map((r) => `${r.key} ${r.operator} (${[...r.values].sort().join(',')})`)
    .sort();
  return [...labels, ...exprs].join(';');
}

/** Every label key a selector looks at. */
export function selectorKeys(sel: LabelSelector): string[] {
  return [...Object.keys(sel.matchLabels), ...sel.matchExpressions.map((r) => r.key)];
}
