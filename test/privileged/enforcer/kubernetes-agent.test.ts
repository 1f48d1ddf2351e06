/**
 * `palisade agent` in Kubernetes mode end to end: the agent (in the node
 * namespace, programs on real veths) reads pods, namespaces and policies
 * from test/enforcer/fake-apiserver.ts over HTTPS with a kubeconfig; a
 * NetworkPolicy added through a watch event is enforced on real TCP as the
 * reference engine predicts; a MeshNetworkPolicy's realization is
 * server-side-applied to its status subresource; an invalid update gives an
 * error status while the old policy stays enforced; a 410 mid-run relists
 * (and picks up a change no event announced); an object annotated for
 * another cluster is left out with one warning and a counted problem in
 * /v1/status.
 *
 * The fake API server listens on a Unix socket in the test process; a relay
 * inside the node namespace gives the agent 127.0.0.1:16443 (the root
 * namespace gets no address or route).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { KUBE_RESOURCES, resourcePath } from '../../../enforcer/src/sources/kubernetes.js';
import { loadWorldFromTexts } from '../../../policy-compiler/src/load/index.js';
import { evaluate, prepareWorld } from '../../../policy-compiler/src/semantics/index.js';
import { FakeApiServer } from '../../enforcer/fake-apiserver.js';
import { requirePrivileges } from '../../support/privileged.js';
import { loopbackCert } from '../../support/tls.js';
import { AgentNode, NS, PODS, PORTS, nsRelayScript, type AgentProc } from './harness.js';

const PORT = 16443;
const TOKEN = `kube-e2e-token-${process.pid}`;
const PODS_PATH = '/api/v1/pods';
const NP_PATH = '/apis/networking.k8s.io/v1/networkpolicies';
const MNP_PATH = '/apis/palisade.dev/v1alpha1/meshnetworkpolicies';

const NS_RELAY_JS = nsRelayScript(PORT);

let node: AgentNode;
let server: FakeApiServer;
let agent: AgentProc;
let relay: ChildProcess | undefined;
/** What the API server holds, as documents the loader reads (for the reference engine). */
const served = new Map<string, Record<string, unknown>>();

type Doc = { metadata: { name: string; namespace?: string; [k: string]: unknown } } & Record<
  string,
  unknown
>;

function put(
  path: string,
  kind: string,
  apiVersion: string,
  obj: Doc,
  how: 'add' | 'update',
): void {
  if (how === 'add') server.add(path, obj);
  else server.update(path, obj);
  const ann =
    kind === 'MeshNetworkPolicy' || kind === 'Cluster'
      ? {}
      : { annotations: { 'palisade.dev/cluster': 'c1' } };
  served.set(`${path}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`, {
    apiVersion,
    kind,
    ...obj,
    metadata: { ...obj.metadata, ...ann },
  });
}

const NP = (port: number): Doc => ({
  metadata: { name: 'b-from-a', namespace: NS, generation: port },
  spec: {
    podSelector: { matchLabels: { app: 'b' } },
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [{ podSelector: { matchLabels: { app: 'a' } } }],
        ports: [{ protocol: 'TCP', port }],
      },
    ],
  },
});

const MNP = (priority: number, generation: number): Doc => ({
  metadata: { name: 'no-a-to-c', generation },
  spec: {
    tier: 'Admin',
    priority,
    subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'c' } } } },
    ingress: [
      {
        name: 'deny-a',
        action: 'Deny',
        from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'a' } } } }],
        protocols: [{ tcp: { destinationPort: { number: 7001 } } }],
      },
    ],
  },
});

/** The reference engine's verdicts over what the server holds (valid objects only). */
function reference(): Record<string, boolean> {
  const loaded = loadWorldFromTexts(
    [...served].map(([file, d]) => ({ file, text: JSON.stringify(d) })),
  );
  const prepared = prepareWorld(loaded.world);
  const out: Record<string, boolean> = {};
  for (const from of PODS)
    for (const to of PODS) {
      if (from === to) continue;
      for (const port of PORTS)
        out[`${from}->${to}:${port}`] =
          evaluate(prepared, {
            from: `c1/${NS}/${from}`,
            to: `c1/${NS}/${to}`,
            protocol: 'TCP',
            port,
          }).verdict === 'Allow';
    }
  return Object.fromEntries(Object.entries(out).sort());
}

const traffic = async () => Object.fromEntries([...(await node.traffic())].sort());

interface KubeSourceStatus {
  name: string;
  problems: number;
  notes: { key: string; kind: string; message: string }[];
}

async function fullStatus() {
  return (await node.status()) as Awaited<ReturnType<AgentNode['status']>> & {
    sources: KubeSourceStatus[];
  };
}

/** POST /v1/verdict in the node namespace. */
async function verdict(from: string, to: string): Promise<{ code: number; body: string }> {
  const out = await node.topo.exec(node.topo.nodeNs, 'curl', [
    '-s',
    '-m',
    '5',
    '-w',
    '\n%{http_code}',
    '-H',
    `@${node.path('auth.h')}`,
    '-H',
    'content-type: application/json',
    '-d',
    JSON.stringify({ from, to, protocol: 'TCP', port: 7000 }),
    'http://127.0.0.1:9962/v1/verdict',
  ]);
  const i = out.lastIndexOf('\n');
  return { code: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

const mnpPatches = () => server.patches.filter((p) => p.path === `${MNP_PATH}/no-a-to-c/status`);

beforeAll(async () => {
  requirePrivileges('root', 'bpffs', 'netns');
  node = await AgentNode.create('ka');
  const key = node.path('tls.key');
  const cert = node.path('tls.crt');
  const tls = loopbackCert(key, cert);
  const certPem = tls.cert;
  server = new FakeApiServer(TOKEN, tls);
  for (const r of KUBE_RESOURCES)
    server.serve(resourcePath(r), r.group ? `${r.group}/${r.version}` : r.version, r.kind);
  const sock = node.path('apiserver.sock');
  await server.startUnix(sock);

  put('/api/v1/namespaces', 'Namespace', 'v1', { metadata: { name: NS } }, 'add');
  put(
    '/api/v1/nodes',
    'Node',
    'v1',
    {
      metadata: { name: 'n1' },
      status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] },
    },
    'add',
  );
  put(
    '/apis/palisade.dev/v1alpha1/clusters',
    'Cluster',
    'palisade.dev/v1alpha1',
    { metadata: { name: 'c1' }, spec: { podCIDRs: ['10.77.0.0/16', 'fd77::/16'] } },
    'add',
  );
  PODS.forEach((name, i) => {
    const d = node.podDoc(name, i) as Doc;
    // as the API server serves them: no cluster annotation (the source adds c1)
    const { annotations: _a, ...metadata } = d.metadata;
    put(PODS_PATH, 'Pod', 'v1', { ...d, metadata: { ...metadata, name } }, 'add');
  });

  relay = spawn(
    'nsenter',
    [`--net=/run/netns/${node.topo.nodeNs}`, process.execPath, '-e', NS_RELAY_JS],
    {
      env: { ...process.env, RELAY_SOCK: sock },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('relay did not start')), 10_000);
    relay!.stdout!.once('data', () => {
      clearTimeout(t);
      resolve();
    });
  });

  const kubeconfig = node.path('kubeconfig');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'fake',
          cluster: {
            server: `https://127.0.0.1:${PORT}`,
            'certificate-authority-data': Buffer.from(certPem).toString('base64'),
          },
        },
      ],
      users: [{ name: 'agent', user: { token: TOKEN } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'agent' } }],
      'current-context': 'fake',
    }),
    { mode: 0o600 },
  );
  agent = node.startAgent(node.writeConfig({ source: { kind: 'kubernetes', kubeconfig } }));
  await node.until(
    'readyz',
    () => node.api('/readyz', 'none'),
    (r) => r.code === 200,
    30_000,
  );
}, 90_000);

afterAll(async () => {
  await node?.cleanup();
  if (relay?.pid !== undefined && relay.exitCode === null) {
    process.kill(relay.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
  }
  await server?.stop();
}, 30_000);

describe('palisade agent in Kubernetes mode', () => {
  it('enforces the listed world on real veths (no policy: what the reference allows)', async () => {
    const want = reference();
    expect(Object.values(want).every(Boolean)).toBe(true);
    expect(await traffic()).toEqual(want);
    // list, then watch from the list's resourceVersion with bookmarks
    const w = server.requests.find((r) => r.path === PODS_PATH && r.query.watch === 'true');
    expect(w?.query.allowWatchBookmarks).toBe('true');
  });

  it('a NetworkPolicy added through a watch event is enforced', async () => {
    put(NP_PATH, 'NetworkPolicy', 'networking.k8s.io/v1', NP(7000), 'add');
    await node.until(
      'policy enforced',
      () => node.status(),
      (s) => s.policies.some((p) => p.name === 'b-from-a' && p.state === 'enforced'),
    );
    const want = reference();
    expect(new Set(Object.values(want))).toEqual(new Set([true, false]));
    expect(await traffic()).toEqual(want);
  });

  it("a MeshNetworkPolicy's realization is server-side-applied to its status subresource", async () => {
    put(MNP_PATH, 'MeshNetworkPolicy', 'palisade.dev/v1alpha1', MNP(10, 1), 'add');
    await node.until(
      'status patch',
      async () => mnpPatches(),
      (ps) =>
        ps.some(
          (p) =>
            (p.body as { status: { nodes: { entries: number }[] } }).status.nodes[0]!.entries > 0,
        ),
    );
    const p = mnpPatches().at(-1)!;
    expect(p.contentType).toBe('application/apply-patch+yaml');
    expect(p.query).toMatchObject({ fieldManager: 'palisade-agent/c1/n1', force: 'true' });
    expect(p.body).toEqual({
      apiVersion: 'palisade.dev/v1alpha1',
      kind: 'MeshNetworkPolicy',
      metadata: { name: 'no-a-to-c' },
      status: {
        nodes: [
          { cluster: 'c1', node: 'n1', revision: '1', entries: expect.any(Number), errors: [] },
        ],
      },
    });
    expect(await traffic()).toEqual(reference());
    expect((await traffic())['a->c:7001']).toBe(false);
  });

  it('an invalid update: error status (PATCHed too), the old policy stays enforced', async () => {
    const before = mnpPatches().length;
    const enforced = reference();
    server.update(MNP_PATH, MNP(5000, 2)); // priority must be 0..1000; not recorded in `served`
    const st = await node.until(
      'error in status',
      () => node.status(),
      (s) => s.policies.some((p) => p.name === 'no-a-to-c' && p.state === 'error'),
    );
    const pol = st.policies.find((p) => p.name === 'no-a-to-c')!;
    expect(pol.enforcedRevision).toBe('1');
    expect(st.lastError).toMatch(/kubernetes:meshnetworkpolicies\/no-a-to-c.*priority/);
    const patched = await node.until(
      'error patch',
      async () => mnpPatches().slice(before),
      (ps) => ps.length > 0,
    );
    const entry = (
      patched.at(-1)!.body as { status: { nodes: { revision: string; errors: string[] }[] } }
    ).status.nodes[0]!;
    expect(entry.revision).toBe('1');
    expect(entry.errors.join('\n')).toMatch(/priority/);
    expect(await traffic()).toEqual(enforced);
    // fixed again
    put(MNP_PATH, 'MeshNetworkPolicy', 'palisade.dev/v1alpha1', MNP(10, 3), 'update');
    await node.until(
      'fixed',
      () => node.status(),
      (s) =>
        s.policies.some(
          (p) => p.name === 'no-a-to-c' && p.state === 'enforced' && p.enforcedRevision === '3',
        ),
    );
  });

  it('a 410 mid-run relists and enforces a change no watch event announced', async () => {
    const lists = () =>
      server.requests.filter((r) => r.path === NP_PATH && r.query.watch === undefined).length;
    const before = lists();
    server.silentlySet(NP_PATH, NP(7001));
    served.set(`${NP_PATH}/${NS}/b-from-a`, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      ...NP(7001),
      metadata: { ...NP(7001).metadata, annotations: { 'palisade.dev/cluster': 'c1' } },
    });
    server.expire();
    await node.until(
      'relisted and enforced',
      () => node.status(),
      (s) => s.policies.some((p) => p.name === 'b-from-a' && p.enforcedRevision === '7001'),
    );
    expect(lists()).toBeGreaterThan(before);
    expect(await traffic()).toEqual(reference());
  });

  it('an object annotated for another cluster: left out, one warning, a counted problem in /v1/status', async () => {
    const foreign = node.podDoc('x', PODS.length) as Doc;
    server.add(PODS_PATH, {
      ...foreign,
      metadata: {
        ...foreign.metadata,
        name: 'x',
        labels: { app: 'a' },
        annotations: { 'palisade.dev/cluster': 'west' },
      },
    });
    const st = await node.until('problem counted', fullStatus, (s) =>
      s.sources.some((x) => x.name === 'kubernetes' && x.problems === 1),
    );
    const k = st.sources.find((x) => x.name === 'kubernetes')!;
    expect(k.notes).toEqual([
      {
        key: 'kubernetes:pods/shop/x',
        kind: 'foreign',
        message: expect.stringContaining('names cluster "west"'),
      },
    ]);
    expect(st.lastError ?? null).toBeNull();
    // more snapshots: still one warning line for the object
    server.add('/api/v1/namespaces', { metadata: { name: 'other' } });
    await node.until(
      'another round',
      () => node.status(),
      (s) => s.datapathRevision > 0 && agent.stderr.includes('kubernetes:pods/shop/x'),
    );
    await new Promise((r) => setTimeout(r, 500));
    const lines = agent.stderr.split('\n').filter((l) => l.includes('kubernetes:pods/shop/x'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/warning: .*annotation palisade\.dev\/cluster names cluster "west"/);
    // not taken into the world: the agent's engine does not know it; a local pod it does
    expect((await verdict('west/shop/x', 'c1/shop/c')).code).toBe(400);
    expect((await verdict('c1/shop/a', 'c1/shop/c')).code).toBe(200);
    expect(await traffic()).toEqual(reference());
  });
});
