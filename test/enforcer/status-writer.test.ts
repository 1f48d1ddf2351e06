import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyStatus } from '../../enforcer/src/api/types.js';
import { kubeConfigFor, MeshPolicyStatusWriter } from '../../enforcer/src/sources/index.js';
import { FakeApiServer } from './fake-apiserver.js';

const MNP = '/apis/palisade.dev/v1alpha1/meshnetworkpolicies';
const server = new FakeApiServer('tok').serve(MNP, 'palisade.dev/v1alpha1', 'MeshNetworkPolicy');

const status = (over: Partial<PolicyStatus>): PolicyStatus => ({
  kind: 'MeshNetworkPolicy',
  cluster: null,
  namespace: null,
  name: 'lockdown',
  revision: '2',
  enforcedRevision: '2',
  state: 'enforced',
  entries: 14,
  error: null,
  ...over,
});

beforeAll(async () => {
  await server.start();
  server.add(MNP, { metadata: { name: 'lockdown', generation: 2 }, spec: {} });
});
afterAll(() => server.stop());

describe('MeshNetworkPolicy status write-back', () => {
  const writer = (node: string) =>
    new MeshPolicyStatusWriter({
      kubeConfig: kubeConfigFor(server.url, 'tok', { skipTLSVerify: true }),
      cluster: 'east',
      node,
    });

  it("server-side applies this node's entry with its own field manager", async () => {
    const a = writer('node-a');
    await a.write([status({}), status({ kind: 'NetworkPolicy', name: 'np' })]);
    expect(server.patches).toHaveLength(1);
    const p = server.patches[0];
    expect(p?.path).toBe(`${MNP}/lockdown/status`);
    expect(p?.contentType).toBe('application/apply-patch+yaml');
    expect(p?.query).toMatchObject({ fieldManager: 'palisade-agent/east/node-a', force: 'true' });
    expect(p?.body).toEqual({
      apiVersion: 'palisade.dev/v1alpha1',
      kind: 'MeshNetworkPolicy',
      metadata: { name: 'lockdown' },
      status: {
        nodes: [{ cluster: 'east', node: 'node-a', revision: '2', entries: 14, errors: [] }],
      },
    });
  });

  it('writes only on change; two nodes keep separate entries; errors are reported', async () => {
    const a = writer('node-a');
    const b = writer('node-b');
    await a.write([status({})]);
    const n = server.patches.length;
    await a.write([status({})]);
    expect(server.patches.length).toBe(n); // unchanged: no request
    await b.write([
      status({
        revision: '3',
        enforcedRevision: '2',
        state: 'error',
        error: 'compile failed: capacity',
      }),
    ]);
    const list = await fetch(`${server.url}${MNP}`, {
      headers: { authorization: 'Bearer tok' },
    }).then((r) => r.json() as Promise<{ items: { status: { nodes: unknown[] } }[] }>);
    expect(list.items[0]?.status.nodes).toEqual([
      { cluster: 'east', node: 'node-a', revision: '2', entries: 14, errors: [] },
      {
        cluster: 'east',
        node: 'node-b',
        revision: '2',
        entries: 0,
        errors: ['compile failed: capacity'],
      },
    ]);
  });

  it('a deleted policy is skipped silently; other failures are reported and retried', async () => {
    const errors: string[] = [];
    const w = new MeshPolicyStatusWriter({
      kubeConfig: kubeConfigFor(server.url, 'wrong-token', { skipTLSVerify: true }),
      cluster: 'east',
      node: 'node-c',
      onError: (p, m) => errors.push(`${p}: ${m}`),
    });
    await w.write([status({})]);
    expect(errors).toEqual(['lockdown: status write failed (401)']);
    await w.write([status({})]);
    expect(w.writes).toBe(2); // retried
    const ok = writer('node-c');
    await ok.write([status({ name: 'gone' })]);
    expect(ok.writes).toBe(1);
  });
});
