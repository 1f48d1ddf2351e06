import { describe, expect, it } from 'vitest';
import { loadWorldFromTexts } from '../load/index.js';
import { shareUnchanged } from './share.js';

const files = (webApp: string, extra = ''): { file: string; text: string }[] => [
  { file: 'ns.yaml', text: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n' },
  {
    file: 'web.yaml',
    text: `apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: ${webApp}}}\nspec: {containers: [{name: c}]}\nstatus: {podIP: 10.0.0.1}\n`,
  },
  {
    file: 'api.yaml',
    text: 'apiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: shop, labels: {app: api}}\nspec: {containers: [{name: c}]}\nstatus: {podIP: 10.0.0.2}\n',
  },
  {
    file: 'np.yaml',
    text: `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\nspec: {podSelector: {}${extra}}\n`,
  },
];
const load = (f: { file: string; text: string }[]) => loadWorldFromTexts(f).world;

describe('shareUnchanged', () => {
  it('gives back the previous world when a reload is equal', () => {
    const a = load(files('web'));
    expect(shareUnchanged(a, load(files('web')))).toBe(a);
    expect(shareUnchanged(undefined, a)).toBe(a);
  });

  it('keeps unchanged lists and objects; changed ones are the new load', () => {
    const a = load(files('web'));
    const b = load(files('web-v2'));
    const s = shareUnchanged(a, b);
    expect(s.namespaces).toBe(a.namespaces);
    expect(s.networkPolicies).toBe(a.networkPolicies);
    expect(s.clusterPolicies).toBe(a.clusterPolicies);
    expect(s.pods).not.toBe(a.pods);
    expect(s.pods.map((p) => p.name).sort()).toEqual(['api', 'web']);
    const byName = (w: typeof s, n: string) => w.pods.find((p) => p.name === n);
    expect(byName(s, 'api')).toBe(byName(a, 'api'));
    expect(byName(s, 'web')).toBe(byName(b, 'web'));
    expect(byName(s, 'web')?.labels).toEqual({ app: 'web-v2' });
    expect(s).toEqual(b);
  });

  it('a changed policy is the new object; the pod list stays', () => {
    const a = load(files('web'));
    const b = load(files('web', ', policyTypes: [Egress]'));
    const s = shareUnchanged(a, b);
    expect(s.pods).toBe(a.pods);
    expect(s.networkPolicies).not.toBe(a.networkPolicies);
    expect(s.networkPolicies[0]).toBe(b.networkPolicies[0]);
    expect(s).toEqual(b);
  });
});
