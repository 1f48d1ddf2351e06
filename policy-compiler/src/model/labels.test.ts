import { describe, expect, it } from 'vitest';
import { selectorMatches, selectorKey, SELECT_ALL, type LabelSelector } from './labels.js';

const sel = (
  m: Record<string, string>,
  e: LabelSelector['matchExpressions'] = [],
): LabelSelector => ({
  matchLabels: m,
  matchExpressions: e,
});

// metav1.LabelSelector semantics (k8s.io/apimachinery/pkg/labels/selector.go).
describe('label selectors', () => {
  it('empty selector selects everything', () => {
    expect(selectorMatches(SELECT_ALL, {})).toBe(true);
    expect(selectorMatches(SELECT_ALL, { a: 'b' })).toBe(true);
  });
  it('matchLabels are ANDed', () => {
    expect(selectorMatches(sel({ a: '1', b: '2' }), { a: '1', b: '2', c: '3' })).toBe(true);
    expect(selectorMatches(sel({ a: '1', b: '2' }), { a: '1' })).toBe(false);
  });
  it('NotIn matches a missing key; In does not', () => {
    expect(selectorMatches(sel({}, [{ key: 'a', operator: 'NotIn', values: ['x'] }]), {})).toBe(
      true,
    );
    expect(selectorMatches(sel({}, [{ key: 'a', operator: 'In', values: ['x'] }]), {})).toBe(false);
    expect(
      selectorMatches(sel({}, [{ key: 'a', operator: 'NotIn', values: ['x'] }]), { a: 'x' }),
    ).toBe(false);
  });
  it('Exists / DoesNotExist', () => {
    expect(
      selectorMatches(sel({}, [{ key: 'a', operator: 'Exists', values: [] }]), { a: '' }),
    ).toBe(true);
    expect(
      selectorMatches(sel({}, [{ key: 'a', operator: 'DoesNotExist', values: [] }]), { a: '' }),
    ).toBe(false);
  });
  it('does not treat inherited object keys as labels', () => {
    expect(
      selectorMatches(sel({}, [{ key: 'constructor', operator: 'Exists', values: [] }]), {}),
    ).toBe(false);
  });
  it('canonical key ignores order', () => {
    expect(selectorKey(sel({ b: '2', a: '1' }))).toBe(selectorKey(sel({ a: '1', b: '2' })));
  });
});
