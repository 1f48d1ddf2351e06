/**
 * Hostile and malformed input: always diagnostics, never an exception, in
 * bounded time and memory (limits in located.ts, docs/validation.md).
 */
import { describe, expect, it } from 'vitest';
import { formatDiagnostic, loadWorldFromTexts, type LoadResult } from './index.js';

function load(text: string, limits = {}): LoadResult {
  return loadWorldFromTexts([{ file: 'h.yaml', text }], { limits });
}
const lines = (r: LoadResult) => r.diagnostics.map(formatDiagnostic);

describe('hostile input', () => {
  it('alias bomb (billion laughs) stops at the alias limit', () => {
    let text = 'a: &a [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 0; i < 20; i++) {
      const p = String.fromCharCode(97 + i);
      const q = String.fromCharCode(98 + i);
      text += `${q}: &${q} [${Array(10).fill(`*${p}`).join(', ')}]\n`;
    }
    expect(lines(load(text))).toEqual(['h.yaml:1:1: more than 1000 alias references']);
  });
  it('alias expansion is also bounded by the node count', () => {
    const text = `a: &a [${Array(100).fill('x').join(',')}]\nb: [${Array(50).fill('*a').join(',')}]\n`;
    expect(lines(load(text, { maxNodes: 1000 }))).toEqual([
      'h.yaml:1:1: document expands to more than 1000 nodes (alias expansion?)',
    ]);
  });
  it('recursive aliases are refused', () => {
    // YAML allows an anchor on a collection that contains its own alias.
    expect(lines(load('a: &a [*a]\n'))[0]).toMatch(/^h\.yaml:1:\d+: /);
  });
  it.each([
    ['flow', '['.repeat(10_000) + ']'.repeat(10_000)],
    // Block maps need one more space of indentation per level: 2k levels are 2 MB already.
    ['block maps', Array.from({ length: 2_000 }, (_, i) => `${' '.repeat(i)}a:`).join('\n') + ' 1'],
    ['compact sequences', '- '.repeat(10_000) + 'x'],
    ['16 MiB of [', '['.repeat(16 * 1024 * 1024 - 1)],
  ])('10k-deep nesting (%s) is refused', (_name, text) => {
    const out = lines(load(text));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^h\.yaml:\d+:\d+: nesting deeper than 64 levels$/);
  });
  it('nesting up to the limit is fine', () => {
    const deep = `apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nstatus: {x: ${'['.repeat(60)}${']'.repeat(60)}}\n`;
    expect(lines(load(deep))).toEqual([]);
  });
  it('a 20 MiB input is refused before parsing', () => {
    const text = `# ${'x'.repeat(20 * 1024 * 1024)}\n`;
    expect(lines(load(text))).toEqual([
      `h.yaml:1:1: input too large (allowed: at most 16777216 bytes, got: ${20 * 1024 * 1024 + 3})`,
    ]);
  });
  it('too many tokens or documents in one text', () => {
    expect(lines(load(`[${'1,'.repeat(2000)}]`, { maxTokens: 1000 }))).toEqual([
      'h.yaml:1:1001: more than 1000 YAML tokens',
    ]);
    const docs = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n'.repeat(20);
    expect(lines(load(docs, { maxDocuments: 5 }))[0]).toBe('h.yaml:1:1: more than 5 documents');
  });
  it('UTF-16 text (as decoded by a naive reader) is refused', () => {
    const utf16 = Buffer.from('\ufeffapiVersion: v1\nkind: Namespace\n', 'utf16le').toString(
      'latin1',
    );
    expect(lines(load(utf16))).toEqual([
      'h.yaml:1:1: input contains NUL bytes: not UTF-8 text (UTF-16 or UTF-32?) (allowed: UTF-8)',
    ]);
  });
  it('binary data with NUL bytes is refused', () => {
    expect(lines(load('apiVersion: v1\nkind: \u0000\u0001\u0002'))).toEqual([
      'h.yaml:2:1: input contains NUL bytes: not UTF-8 text (allowed: UTF-8)',
    ]);
  });
  it('a UTF-8 byte order mark is accepted', () => {
    const r = load('\ufeffapiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n');
    expect(lines(r)).toEqual([]);
    expect(r.world.namespaces).toHaveLength(1);
  });
  it('duplicate keys are errors at the second key, and the rest is still checked', () => {
    expect(
      lines(
        load(
          'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n  labels: {x: 1}\n',
        ),
      ),
    ).toEqual([
      'h.yaml:5:3: metadata: duplicate key "name"',
      'h.yaml:6:15: metadata.labels.x: wrong type (allowed: string, got: integer 1)',
    ]);
  });
  it('YAML syntax errors carry their position and do not stop other documents', () => {
    const r = load(
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: a\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n',
    );
    expect(lines(r)).toEqual([
      'h.yaml:4:1: Flow map in block collection must be sufficiently indented and end with a }',
    ]);
    expect(r.world.namespaces.map((n) => n.name)).toEqual(['b']);
  });
  it('non-string keys are refused', () => {
    expect(
      lines(load('apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n? [x]\n: 1\n')),
    ).toEqual(['h.yaml:4:3: mapping keys must be strings']);
  });
  it('wrong types everywhere give errors, not exceptions', () => {
    const shapes = ['1', '"x"', '[]', '{}', 'true', 'null', '[1, {a: b}]', '{a: {b: [c]}}'];
    const kinds = [
      'Namespace',
      'Pod',
      'Node',
      'Cluster',
      'NetworkPolicy',
      'ClusterNetworkPolicy',
      'AdminNetworkPolicy',
      'BaselineAdminNetworkPolicy',
      'MeshNetworkPolicy',
    ];
    const api: Record<string, string> = {
      Namespace: 'v1',
      Pod: 'v1',
      Node: 'v1',
      Cluster: 'palisade.dev/v1alpha1',
      MeshNetworkPolicy: 'palisade.dev/v1alpha1',
      NetworkPolicy: 'networking.k8s.io/v1',
      ClusterNetworkPolicy: 'policy.networking.k8s.io/v1alpha2',
      AdminNetworkPolicy: 'policy.networking.k8s.io/v1alpha1',
      BaselineAdminNetworkPolicy: 'policy.networking.k8s.io/v1alpha1',
    };
    for (const kind of kinds) {
      for (const s of shapes) {
        for (const field of [
          'metadata',
          'spec',
          'status',
          'spec.subject',
          'spec.ingress',
          'spec.containers',
          'metadata.labels',
        ]) {
          const [top, sub] = field.split('.');
          const body = sub ? `${top}: {${sub}: ${s}}` : `${top}: ${s}`;
          const text = `apiVersion: ${api[kind]}\nkind: ${kind}\n${top === 'metadata' ? '' : 'metadata: {name: a}\n'}${body}\n`;
          const r = load(text);
          expect(Array.isArray(r.diagnostics)).toBe(true);
          // A scalar or list where metadata or spec (an object) belongs is always an error.
          const notObject = !s.startsWith('{') && s !== 'null';
          if (!sub && top !== 'status' && notObject) {
            expect(r.diagnostics.length, `${kind} ${field}=${s}`).toBeGreaterThan(0);
          }
        }
      }
    }
  });
  it('never throws on random bytes', () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const alphabet = 'ab:- \n\t[]{},&*!|>\'"#%@`?0123456789.';
    for (let i = 0; i < 300; i++) {
      const n = Math.floor(rnd() * 200);
      let s = '';
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      expect(() => load(s)).not.toThrow();
    }
  });
});

describe('object prototype names', () => {
  it('fields named like Object.prototype members are unknown fields, not accepted silently', () => {
    const text =
      'apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec:\n  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  constructor: 1\n  toString: x\n  __proto__: {}\n';
    expect(lines(load(text))).toEqual([
      'h.yaml:8:3: spec.constructor: unknown field (allowed: egress, ingress, priority, subject, tier)',
      'h.yaml:9:3: spec.toString: unknown field (allowed: egress, ingress, priority, subject, tier)',
      'h.yaml:10:3: spec.__proto__: unknown field (allowed: egress, ingress, priority, subject, tier)',
    ]);
  });
});
