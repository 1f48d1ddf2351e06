import { describe, expect, it } from 'vitest';
import { loadWorldFromTexts } from '../../../policy-compiler/src/load/index.js';
import { makeSnapshot } from '../sources/snapshot.js';
import { screenLocalObjects } from './local-objects.js';

const pod = (name: string, cluster?: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'shop',
      ...(cluster !== undefined ? { annotations: { 'palisade.dev/cluster': cluster } } : {}),
    },
    spec: { containers: [{ name: 'c' }] },
    status: { podIP: '10.0.0.1' },
  });

const mnp = JSON.stringify({
  apiVersion: 'palisade.dev/v1alpha1',
  kind: 'MeshNetworkPolicy',
  metadata: { name: 'm' },
  spec: { tier: 'Admin', priority: 1, subject: { namespaces: {} }, ingress: [] },
});

describe('screenLocalObjects', () => {
  const snap = makeSnapshot([
    { file: 'kubernetes:pods/shop/mine', text: pod('mine', 'east') },
    { file: 'kubernetes:pods/shop/theirs', text: pod('theirs', 'west') },
    { file: 'kubernetes:meshnetworkpolicies/m', text: mnp },
  ]);
  const loaded = loadWorldFromTexts(snap.inputs);

  it('kubernetes: an object annotated for another cluster is left out, with one note naming it', () => {
    const r = screenLocalObjects(snap, loaded, 'east', 'kubernetes');
    expect(r.snapshot.inputs.map((i) => i.file)).toEqual([
      'kubernetes:meshnetworkpolicies/m',
      'kubernetes:pods/shop/mine',
    ]);
    expect(r.notes).toEqual([
      {
        key: 'kubernetes:pods/shop/theirs',
        kind: 'foreign',
        message: expect.stringContaining(
          'Pod shop/theirs: annotation palisade.dev/cluster names cluster "west"',
        ),
      },
    ]);
    expect(r.snapshot.digest).not.toBe(snap.digest);
  });

  it('kubernetes: nothing foreign, the snapshot is unchanged', () => {
    const only = makeSnapshot(snap.inputs.filter((i) => !i.file.endsWith('theirs')));
    const r = screenLocalObjects(only, loadWorldFromTexts(only.inputs), 'east', 'kubernetes');
    expect(r.snapshot).toBe(only);
    expect(r.notes).toEqual([]);
  });

  it('directory: other clusters are kept (remote endpoints); objects in "default" are reported, kept', () => {
    const d = makeSnapshot([
      { file: 'w.yaml', text: [pod('a', 'west'), pod('b')].join('\n---\n') },
    ]);
    const r = screenLocalObjects(d, loadWorldFromTexts(d.inputs), 'east', 'directory');
    expect(r.snapshot).toBe(d);
    expect(r.notes).toEqual([
      {
        key: expect.stringMatching(/^w\.yaml:\d+:\d+$/),
        kind: 'foreign',
        message: expect.stringContaining('Pod shop/b is in cluster "default"'),
      },
    ]);
    // an agent of cluster "default" has nothing to report
    expect(
      screenLocalObjects(d, loadWorldFromTexts(d.inputs), 'default', 'directory').notes,
    ).toEqual([]);
  });
});
