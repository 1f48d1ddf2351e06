import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KUBE_RESOURCES,
  KubernetesSource,
  kubeConfigFor,
  resourcePath,
  type SourceSnapshot,
} from '../../enforcer/src/sources/index.js';
import { loadWorldFromTexts } from '../../policy-compiler/src/load/index.js';
import { FakeApiServer } from './fake-apiserver.js';
import { waitFor } from './wait.js';
import { loopbackCert } from '../support/tls.js';

const TOKEN = 'kube-token-for-tests';
const PODS = '/api/v1/pods';
const NS = '/api/v1/namespaces';
const NP = '/apis/networking.k8s.io/v1/networkpolicies';

// A throwaway CA-less self-signed certificate for 127.0.0.1: the client verifies it.
const tlsDir = mkdtempSync(join(tmpdir(), 'palisade-kube-'));
const tls = loopbackCert(join(tlsDir, 'key.pem'), join(tlsDir, 'cert.pem'));
const server = new FakeApiServer(TOKEN, tls);
for (const r of KUBE_RESOURCES) {
  // MeshNetworkPolicy CRD "not installed": the source must still sync.
  if (r.plural === 'meshnetworkpolicies') continue;
  server.serve(resourcePath(r), r.group ? `${r.group}/${r.version}` : r.version, r.kind);
}

const pod = (name: string, labels: Record<string, string>, ip: string) => ({
  metadata: {
    name,
    namespace: 'shop',
    uid: `uid-${name}`,
    labels,
    managedFields: [{ manager: 'kubectl' }],
  },
  spec: {
    nodeName: 'node-a',
    containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }],
  },
  status: { podIP: ip, podIPs: [{ ip }] },
});

let latest: SourceSnapshot | undefined;
let snapshots = 0;
const errors: string[] = [];
let source: KubernetesSource;

const docs = (): Record<string, Record<string, unknown>> =>
  Object.fromEntries((latest?.inputs ?? []).map((i) => [i.file, JSON.parse(i.text)]));
const podLabels = (name: string): unknown =>
  (docs()[`kubernetes:pods/shop/${name}`]?.metadata as { labels?: unknown } | undefined)?.labels;

beforeAll(async () => {
  await server.start();
  server.add(NS, { metadata: { name: 'shop', labels: { 'kubernetes.io/metadata.name': 'shop' } } });
  server.add(PODS, pod('web-1', { app: 'web' }, '10.0.0.1'));
  source = new KubernetesSource({
    kubeConfig: kubeConfigFor(server.url, TOKEN, { caPem: tls.cert }),
    clusterName: 'east',
    debounceMs: 20,
    backoff: { initialMs: 50, maxMs: 400 },
    onSnapshot: (s) => {
      latest = s;
      snapshots++;
    },
    onError: (r, m) => errors.push(`${r}: ${m}`),
  });
  await source.start();
});

afterAll(async () => {
  await source.stop();
  await server.stop();
  rmSync(tlsDir, { recursive: true, force: true });
});

describe('Kubernetes informer source against a list/watch server', () => {
  it('initial list: one snapshot with every object as a loader document', async () => {
    await waitFor('first snapshot', () => latest !== undefined);
    const d = docs();
    expect(Object.keys(d).sort()).toEqual([
      'kubernetes:namespaces/shop',
      'kubernetes:pods/shop/web-1',
    ]);
    const p = d['kubernetes:pods/shop/web-1'] as {
      apiVersion: string;
      kind: string;
      metadata: Record<string, unknown>;
      status: unknown;
    };
    expect(p.apiVersion).toBe('v1');
    expect(p.kind).toBe('Pod');
    expect(p.metadata.annotations).toEqual({ 'palisade.dev/cluster': 'east' });
    expect(p.metadata.managedFields).toBeUndefined();
    expect(p.status).toEqual({ podIP: '10.0.0.1', podIPs: [{ ip: '10.0.0.1' }] });
    // The missing CRD is reported, not fatal.
    expect(
      errors.some((e) => e.startsWith('meshnetworkpolicies:') && e.includes('not served')),
    ).toBe(true);
    // Watches resume from the list's resourceVersion and ask for bookmarks.
    const podWatch = server.requests.find((r) => r.path === PODS && r.query.watch === 'true');
    expect(podWatch?.query.allowWatchBookmarks).toBe('true');
    expect(Number(podWatch?.query.resourceVersion)).toBeGreaterThan(0);
  });

  it('adds, updates and deletes are observed', async () => {
    await waitFor('pod watch', () => server.watchCount(PODS) > 0);
    server.add(PODS, pod('db-0', { app: 'db' }, '10.0.0.2'));
    server.add(NP, {
      metadata: { name: 'deny', namespace: 'shop', generation: 1 },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    await waitFor(
      'add',
      () =>
        'kubernetes:pods/shop/db-0' in docs() && 'kubernetes:networkpolicies/shop/deny' in docs(),
    );
    expect(docs()['kubernetes:networkpolicies/shop/deny']).toMatchObject({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
    });
    // The documents are what the loader accepts: no diagnostics, objects in the agent's cluster.
    const loaded = loadWorldFromTexts(latest?.inputs ?? []);
    expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(
      loaded.world.pods.map((p) => `${p.cluster}/${p.namespace}/${p.name} ${p.ips.join(',')}`),
    ).toEqual(['east/shop/db-0 10.0.0.2', 'east/shop/web-1 10.0.0.1']);
    expect(loaded.world.networkPolicies.map((n) => [n.cluster, n.name, n.revision])).toEqual([
      ['east', 'deny', '1'],
    ]);
    server.update(PODS, pod('db-0', { app: 'db', tier: 'data' }, '10.0.0.2'));
    await waitFor(
      'update',
      () => JSON.stringify(podLabels('db-0')) === JSON.stringify({ app: 'db', tier: 'data' }),
    );
    server.remove(PODS, 'db-0', 'shop');
    await waitFor('delete', () => !('kubernetes:pods/shop/db-0' in docs()));
  });

  it('a bookmark moves the resume point: reconnect watches from it without relisting', async () => {
    await waitFor('pod watch', () => server.watchCount(PODS) > 0);
    server.add(NS, { metadata: { name: 'other' } }); // bumps the global resourceVersion
    await waitFor('ns add', () => 'kubernetes:namespaces/other' in docs());
    const nsAddRv = Number(
      (docs()['kubernetes:namespaces/other']?.metadata as { resourceVersion: string })
        .resourceVersion,
    );
    // The pod watch saw no event since; only the bookmark can move it past nsAddRv.
    expect(Number(source.resourceVersion('pods'))).toBeLessThan(nsAddRv);
    server.bookmark(PODS);
    await waitFor('bookmark read', () => Number(source.resourceVersion('pods')) >= nsAddRv);
    const before = server.requests.length;
    const lists = source.listCount('pods');
    server.dropWatches();
    const rewatch = () =>
      server.requests.slice(before).find((r) => r.path === PODS && r.query.watch === 'true');
    await waitFor('re-watch', () => rewatch() !== undefined);
    expect(Number(rewatch()?.query.resourceVersion)).toBeGreaterThanOrEqual(nsAddRv);
    expect(source.listCount('pods')).toBe(lists);
  });

  it('reconnects after the server drops the stream and sees later changes', async () => {
    await waitFor('pod watch', () => server.watchCount(PODS) > 0);
    server.dropWatches();
    await waitFor('pod re-watch', () => server.watchCount(PODS) > 0);
    server.add(PODS, pod('api-2', { app: 'api' }, '10.0.0.3'));
    await waitFor('add after reconnect', () => 'kubernetes:pods/shop/api-2' in docs());
  });

  it('watch expiry (410 Gone) → relist converges, including changes no event announced', async () => {
    await waitFor('pod watch', () => server.watchCount(PODS) > 0);
    const lists = source.listCount('pods');
    server.silentlySet(PODS, pod('web-1', { app: 'web', version: 'v2' }, '10.0.0.1'));
    server.expire();
    await waitFor('relist after 410', () => source.listCount('pods') > lists);
    await waitFor(
      'converged',
      () => JSON.stringify(podLabels('web-1')) === JSON.stringify({ app: 'web', version: 'v2' }),
    );
    const relist = server.requests.filter((r) => r.path === PODS && r.query.watch === undefined);
    expect(relist.length).toBeGreaterThanOrEqual(2);
  });

  it('survives the API server going away and coming back (backoff restart)', async () => {
    const port = server.port;
    const errorsBefore = errors.length;
    await server.stop();
    server.silentlySet(PODS, pod('late-9', { app: 'late' }, '10.0.0.9'));
    await new Promise((r) => setTimeout(r, 300)); // let a few attempts fail
    await server.start(port);
    server.expire(); // what a restarted apiserver with compacted etcd would answer
    await waitFor('converged after restart', () => 'kubernetes:pods/shop/late-9' in docs(), 20_000);
    const outage = errors.slice(errorsBefore).filter((e) => e.startsWith('pods:'));
    expect(outage.length).toBeGreaterThan(0);
    expect(outage[0]).toContain('ECONNREFUSED');
    expect(errors.join('\n')).not.toContain(TOKEN);
    expect(snapshots).toBeGreaterThan(3);
  });
});
