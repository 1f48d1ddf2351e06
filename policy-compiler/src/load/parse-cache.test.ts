import { describe, expect, it } from 'vitest';
import { loadWorldFromTexts, ParseCache, readInputs, type LoadInput } from './index.js';

const bad: LoadInput[] = [
  // a schema error, a duplicate across files, a YAML syntax error, a List
  {
    file: 'bad/np.yaml',
    text: 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: a}\nspec: {podSelector: {}, ingress: [{ports: [{port: 70000}]}]}\n',
  },
  {
    file: 'bad/dup.yaml',
    text: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: payments, annotations: {palisade.dev/cluster: east}}\n',
  },
  { file: 'bad/syntax.yaml', text: 'a: [1, 2\n' },
  {
    file: 'bad/list.yaml',
    text: 'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: l1}}\n- {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: l1}, spec: {containers: [{name: c}]}}\n',
  },
];

describe('ParseCache', () => {
  it('a load with the cache is the load without it, first time and when every file is reused', async () => {
    const inputs = [...(await readInputs(['examples/world'])).inputs, ...bad];
    const plain = loadWorldFromTexts(inputs);
    expect(plain.diagnostics.length).toBeGreaterThan(2);
    const cache = new ParseCache();
    const first = loadWorldFromTexts(inputs, { parseCache: cache });
    const second = loadWorldFromTexts(inputs, { parseCache: cache });
    for (const r of [first, second]) {
      expect(r.world).toEqual(plain.world);
      expect(r.diagnostics).toEqual(plain.diagnostics);
      expect(r.objects).toEqual(plain.objects);
    }
    expect(cache.stats).toEqual({ parsed: inputs.length, reused: inputs.length });
    // Unchanged objects are the same objects (what the incremental compiler keys on).
    second.world.pods.forEach((p, i) => expect(p).toBe(first.world.pods[i]));
    second.world.networkPolicies.forEach((p, i) => expect(p).toBe(first.world.networkPolicies[i]));
  });

  it('parses only changed files, forgets vanished ones, and finds duplicates across loads', () => {
    const ns = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${name}}\n`;
    const cache = new ParseCache();
    const a = loadWorldFromTexts(
      [
        { file: 'a.yaml', text: ns('a') },
        { file: 'b.yaml', text: ns('b') },
      ],
      { parseCache: cache },
    );
    expect(a.diagnostics).toEqual([]);
    const b = loadWorldFromTexts(
      [
        { file: 'a.yaml', text: ns('a') },
        { file: 'c.yaml', text: ns('a') }, // same object as a.yaml: a duplicate
      ],
      { parseCache: cache },
    );
    expect(cache.stats).toEqual({ parsed: 3, reused: 1 });
    expect(cache.size).toBe(2); // b.yaml is forgotten
    expect(b.diagnostics.map((d) => [d.file, d.code])).toEqual([['c.yaml', 'PAL030']]);
    expect(b.world.namespaces.map((n) => n.name)).toEqual(['a']);
    expect(b.world.namespaces[0]).toBe(a.world.namespaces[0]);
    // Other limits are another parse.
    loadWorldFromTexts([{ file: 'a.yaml', text: ns('a') }], {
      parseCache: cache,
      limits: { maxDepth: 10 },
    });
    expect(cache.stats.parsed).toBe(4);
  });
});
