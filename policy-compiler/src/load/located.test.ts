import { describe, expect, it } from 'vitest';
import { formatPath, parseYamlText } from './located.js';

describe('located YAML', () => {
  it('field paths: dots for fields, brackets for indexes and non-identifier keys', () => {
    expect(formatPath(['spec', 'ingress', 0, 'from', 1, 'namespaces'])).toBe(
      'spec.ingress[0].from[1].namespaces',
    );
    expect(formatPath(['metadata', 'labels', 'app.kubernetes.io/name'])).toBe(
      'metadata.labels[app.kubernetes.io/name]',
    );
    expect(formatPath(['items', 2, 'spec'])).toBe('items[2].spec');
    expect(formatPath([])).toBe('');
  });
  it('spans of values and keys, 1-based, end exclusive; absent paths fall back to the deepest ancestor', () => {
    const { documents, problems } = parseYamlText('f', 'a:\n  b: [x, yy]\n  c: {d: 1}\n');
    expect(problems).toEqual([]);
    const d = documents[0];
    expect(d?.spanOf(['a', 'b', 1])).toEqual({ line: 2, col: 10, endLine: 2, endCol: 12 });
    expect(d?.keySpanOf(['a', 'c'])).toEqual({ line: 3, col: 3, endLine: 3, endCol: 4 });
    expect(d?.spanOf(['a', 'c', 'd'])).toEqual({ line: 3, col: 10, endLine: 3, endCol: 11 });
    expect(d?.spanOf(['a', 'c', 'nope'])).toEqual(d?.spanOf(['a', 'c']));
  });
  it('values: YAML 1.2 core (yes is a string), nulls dropped, aliases expanded, plain objects', () => {
    const { documents } = parseYamlText(
      'f',
      'a: yes\nb: null\nc: ~\nd: &x {e: 1}\nf: *x\ng: 0x10\n',
    );
    const v = documents[0]?.value as Record<string, unknown>;
    expect(v).toEqual({ a: 'yes', d: { e: 1 }, f: { e: 1 }, g: 16 });
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
  });
  it('keys like __proto__ are plain keys, not prototype changes', () => {
    const { documents } = parseYamlText('f', '__proto__: {polluted: true}\nconstructor: 1\n');
    const v = documents[0]?.value as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});
