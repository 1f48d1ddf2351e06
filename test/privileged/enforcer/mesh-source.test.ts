/**
 * The mesh store source end to end, with a real etcd (tunnel/src/etcd-process.ts,
 * stopped by pid) and two real `palisade agent` processes:
 *  - agent c1/n1 (the harness node: pods a, b, c on veths, programs attached)
 *    reads the store (and publishes its own pods);
 *  - agent west/w1, in a namespace of its own, publishes west's pod `w`
 *    from its manifest directory, as every west node's agent would.
 * West's Cluster record is joined through MeshStore as its tunnel gateway
 * would; the MeshNetworkPolicy is written with MeshStore.putPolicy.
 * The pod namespace of `w` (address 10.77.4.2) hangs off c1's node: it stands
 * for traffic arriving from west (the tunnel itself is tested in
 * test/privileged/tunnel). Real TCP from it to c1's pods is allowed and
 * denied as the MeshNetworkPolicy says; a changed policy changes it; bad
 * records are reported and change nothing; west's lease expiring removes w
 * from c1's world; an etcd restart is resumed from the revision (no re-read);
 * a compaction while disconnected makes the source read everything again.
 *
 * Agents run in network namespaces, etcd in the root namespace on
 * 127.0.0.1: a relay joins them through a Unix socket (not network-
 * namespaced), so no address or route is added to the root namespace. The
 * relay can be cut, which is how the test disconnects the agents.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { NetnsLab } from '../../support/netns.js';
import { requirePrivileges } from '../../support/privileged.js';
import { freePort, startEtcd, type EtcdHandle } from '../../../tunnel/src/etcd-process.js';
import { generateKeyPair } from '../../../tunnel/src/keys.js';
import { endpointKey, MeshStore } from '../../../tunnel/src/mesh-store.js';
import { EndpointPublisher } from '../../../enforcer/src/sources/mesh-store-publisher.js';
import { loadWorldFromTexts } from '../../../policy-compiler/src/load/index.js';
import { AgentNode, CLI, docs, nsRelayScript, readRecords, type AgentProc } from './harness.js';

const RELAY_PORT = 23790;
const W = 3; // topology pod index of west's pod w
const A_IP = '10.77.1.2';
const B_IP = '10.77.2.2';

const NS_RELAY_JS = nsRelayScript(RELAY_PORT);

/** The root-side half: Unix socket → etcd's TCP port, with a switch to cut every connection. */
class UnixRelay {
  private readonly conns = new Set<Socket>();
  private server: Server | undefined;
  cut = false;
  constructor(
    readonly path: string,
    private readonly etcdPort: number,
  ) {}
  async start(): Promise<void> {
    this.server = createServer((c) => {
      if (this.cut) {
        c.destroy();
        return;
      }
      const u = createConnection(this.etcdPort, '127.0.0.1');
      this.conns.add(c).add(u);
      c.pipe(u);
      u.pipe(c);
      const end = (): void => {
        c.destroy();
        u.destroy();
        this.conns.delete(c);
        this.conns.delete(u);
      };
      for (const s of [c, u]) s.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => this.server!.listen(this.path, () => r()));
  }
  sever(): void {
    this.cut = true;
    for (const s of this.conns) s.destroy();
    this.conns.clear();
  }
  restore(): void {
    this.cut = false;
  }
  async stop(): Promise<void> {
    this.sever();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

let etcd: EtcdHandle | undefined;
let etcdOpts: Parameters<typeof startEtcd>[0];
let relay: UnixRelay;
let node: AgentNode;

let east: AgentProc;
let eastConfig: string;
let westLab: NetnsLab;
let westNs: string;
let westDir: string;
let westConfig: string;
let west: ChildProcess | undefined;
let westGateway: MeshStore | undefined;
let admin: MeshStore;
const relays: ChildProcess[] = [];
const westPin = `/sys/fs/bpf/palisade-mesh-west-${process.pid}`;

interface MeshStatus {
  name: string;
  state: string;
  problems: number;
  ignored: number;
  notes: { key: string; kind: string; message: string }[];
  counts: Record<string, number> & { fullReads: number; endpoints: number; clusters: number };
  revision: string;
}

async function meshStatus(): Promise<MeshStatus> {
  const s = (await node.status()) as unknown as { sources: MeshStatus[] };
  const m = s.sources.find((x) => x.name === 'mesh');
  if (!m) throw new Error('no mesh source in /v1/status');
  return m;
}

const mnp = (acceptPort: number) => ({
  apiVersion: 'palisade.dev/v1alpha1',
  kind: 'MeshNetworkPolicy',
  metadata: { name: 'west-to-b' },
  spec: {
    tier: 'Admin',
    priority: 10,
    subject: {
      pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'b' } } },
      clusters: { matchLabels: { 'palisade.dev/cluster-name': 'c1' } },
    },
    ingress: [
      {
        name: 'w-on-one-port',
        action: 'Accept',
        from: [
          {
            pods: {
              namespaceSelector: { matchLabels: { team: 'payments' } },
              podSelector: { matchLabels: { app: 'w' } },
            },
            clusters: { matchLabels: { region: 'eu' } },
          },
        ],
        protocols: [{ tcp: { destinationPort: { number: acceptPort } } }],
      },
      {
        name: 'rest-of-eu',
        action: 'Deny',
        from: [
          {
            pods: { namespaceSelector: {}, podSelector: {} },
            clusters: { matchLabels: { region: 'eu' } },
          },
        ],
      },
    ],
  },
});

/** TCP from w to a and b on both ports: "b:7000" → connected. */
async function fromWest(): Promise<Record<string, boolean>> {
  const w = await node.topo.agent(W);
  const out: Record<string, boolean> = {};
  await Promise.all(
    (
      [
        ['a', A_IP],
        ['b', B_IP],
      ] as const
    ).flatMap(([n, ip]) =>
      [7000, 7001].map(async (p) => {
        out[`${n}:${p}`] = await w.tcp(ip, p, 700);
      }),
    ),
  );
  return Object.fromEntries(Object.entries(out).sort());
}

function startWest(): ChildProcess {
  const p = spawn(
    'nsenter',
    [`--net=/run/netns/${westNs}`, process.execPath, CLI, 'agent', '--config', westConfig],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  p.stderr!.on('data', () => undefined);
  return p;
}

async function stopProc(p: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!p || p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  process.kill(p.pid, signal);
  await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
}

beforeAll(async () => {
  requirePrivileges('root', 'bpffs', 'netns', 'etcd');
  node = await AgentNode.create('ms');
  const etcdDir = node.path('etcd');
  etcdOpts = {
    dataDir: etcdDir,
    clientPort: await freePort(),
    peerPort: await freePort(),
    logFile: node.path('etcd.log'),
  };
  etcd = await startEtcd(etcdOpts);
  admin = MeshStore.connect([etcd.endpoint]);
  relay = new UnixRelay(node.path('etcd.sock'), etcdOpts.clientPort);
  await relay.start();

  westLab = new NetnsLab('msw');
  westNs = await westLab.addNamespace('node');
  for (const ns of [node.topo.nodeNs, westNs]) {
    const r = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '-e', NS_RELAY_JS], {
      env: { ...process.env, RELAY_SOCK: relay.path },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    relays.push(r);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('relay did not start')), 10_000);
      r.stdout!.once('data', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  // West: its tunnel gateway's Cluster record, and its agent publishing pod w.
  westGateway = MeshStore.connect([etcd.endpoint]);
  await westGateway.join(
    {
      name: 'west',
      labels: { region: 'eu' },
      podCIDRs: ['10.77.4.0/24'],
      serviceCIDRs: [],
      nodeCIDRs: [],
      gateway: { endpoint: '192.0.2.2:51820' },
    },
    {
      endpointHost: '192.0.2.2',
      keys: [{ epoch: 0, port: 51820, publicKey: generateKeyPair().publicKey }],
      routesEpoch: 0,
    },
    30,
  );
  westDir = mkdtempSync(join(tmpdir(), 'palisade-mesh-west-'));
  mkdirSync(join(westDir, 'world'));
  const ann = { 'palisade.dev/cluster': 'west' };
  writeFileSync(
    join(westDir, 'world', 'west.yaml'),
    docs(
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'shop', labels: { team: 'payments' }, annotations: ann },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'w', namespace: 'shop', labels: { app: 'w' }, annotations: ann },
        spec: {
          nodeName: 'w1',
          containers: [{ name: 'c', ports: [{ name: 'api', containerPort: 9000 }] }],
        },
        status: { podIP: node.topo.pod(W).ip4 },
      },
    ),
  );
  writeFileSync(join(westDir, 'token'), `west-token-${process.pid}-abcdefgh\n`, { mode: 0o600 });
  chmodSync(join(westDir, 'token'), 0o600);
  westConfig = join(westDir, 'agent.yaml');
  writeFileSync(
    westConfig,
    stringify({
      node: 'w1',
      cluster: 'west',
      source: { kind: 'directory', dir: join(westDir, 'world'), rescanMs: 1000 },
      pinDir: westPin,
      stateDir: join(westDir, 'state'),
      api: { listen: '127.0.0.1:9962', tokenFile: join(westDir, 'token') },
      mesh: { etcd: [`http://127.0.0.1:${RELAY_PORT}`], publish: true, leaseTtlSec: 3 },
    }),
  );
  west = startWest();

  const config = node.writeConfig({
    mesh: {
      etcd: [`http://127.0.0.1:${RELAY_PORT}`],
      publish: true,
      callTimeoutMs: 2000,
      initialSyncTimeoutMs: 10_000,
    },
  });
  eastConfig = config;
  east = node.startAgent(config);
  await node.until(
    'readyz',
    () => node.api('/readyz', 'none'),
    (r) => r.code === 200,
    30_000,
  );
}, 90_000);

afterAll(async () => {
  await stopProc(west, 'SIGKILL');
  for (const r of relays) await stopProc(r, 'SIGKILL');
  await node?.cleanup();
  await westLab?.cleanup();
  westGateway?.close();
  admin?.close();
  await relay?.stop();
  await etcd?.stop();
  rmSync(westPin, { recursive: true, force: true });
  if (westDir) rmSync(westDir, { recursive: true, force: true });
}, 60_000);

/** A world of `n` pods of cluster pub on node p1 (pod 0's labels vary with `v`). */
function pubWorld(n: number, v: string) {
  const ann = { 'palisade.dev/cluster': 'pub' };
  const objs: unknown[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns', annotations: ann } },
  ];
  for (let i = 0; i < n; i++)
    objs.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `p${i}`,
        namespace: 'ns',
        labels: { app: i === 0 ? v : 'x' },
        annotations: ann,
      },
      spec: { nodeName: 'p1', containers: [{ name: 'c' }] },
      status: { podIP: `10.99.${i >> 8}.${i & 255}` },
    });
  return loadWorldFromTexts([{ file: 'pub.yaml', text: docs(...objs) }]).world;
}

describe('endpoint publisher against real etcd', () => {
  it('writes in bounded transactions, then only what changed, and nothing for an unchanged world', async () => {
    const pub = new EndpointPublisher({
      store: admin,
      cluster: 'pub',
      node: 'p1',
      ttlSec: 30,
      batchSize: 64,
    });
    const modRevs = async () =>
      Object.fromEntries(
        (await admin.client.getAll().prefix('/palisade/clusters/pub/endpoints/').exec()).kvs.map(
          (kv) => [kv.key.toString(), String(kv.mod_revision)],
        ),
      );
    try {
      pub.update(pubWorld(150, 'a'));
      await pub.settled();
      const first = await modRevs();
      expect(Object.keys(first)).toHaveLength(150);
      // 150 puts in transactions of at most 64 operations: 3 revisions (other writers may interleave)
      const perTxn = new Map<string, number>();
      for (const r of Object.values(first)) perTxn.set(r, (perTxn.get(r) ?? 0) + 1);
      expect([...perTxn.values()].sort((a, b) => b - a)).toEqual([64, 64, 22]);
      pub.update(pubWorld(150, 'b')); // one pod's labels changed
      await pub.settled();
      const second = await modRevs();
      const changed = Object.keys(second).filter((k) => second[k] !== first[k]);
      expect(changed).toEqual([endpointKey('pub', 'ns', 'p0')]);
      const puts = pub.stats.puts;
      pub.update(pubWorld(150, 'b'));
      await pub.settled();
      expect(await modRevs()).toEqual(second);
      expect(pub.stats.puts).toBe(puts);
      pub.update(pubWorld(100, 'b')); // 50 pods went
      await pub.settled();
      expect(Object.keys(await modRevs())).toHaveLength(100);
      expect(pub.stats).toMatchObject({ puts: 151, deletes: 50, leases: 1 });
    } finally {
      pub.stop();
      await admin.client.delete().prefix('/palisade/clusters/pub/');
    }
  });
});

describe('mesh store source (real etcd, two agents)', () => {
  it("west's agent publishes its pod; c1's agent publishes its own and ignores them with a reason", async () => {
    const key = endpointKey('west', 'shop', 'w');
    const rec = await node.until(
      'w published',
      async () => JSON.parse((await admin.client.get(key).string()) ?? 'null'),
      (r) => r !== null,
      20_000,
    );
    expect(rec).toMatchObject({
      namespace: 'shop',
      name: 'w',
      node: 'w1',
      labels: { app: 'w' },
      namespaceLabels: { team: 'payments' },
      ips: ['10.77.4.2'],
      ports: [{ name: 'api', containerPort: 9000, protocol: 'TCP' }],
    });
    const own = await admin.client.getAll().prefix('/palisade/clusters/c1/endpoints/').keys();
    expect(own.sort()).toEqual(['a', 'b', 'c'].map((p) => endpointKey('c1', 'shop', p)));
    // A watch stream can drop and come back on a loaded machine (state 'disconnected' for a
    // moment, lastError says why); what matters here is the synced view, so wait for it.
    const m = await node.until(
      'west in the world, synced',
      meshStatus,
      (s) => s.counts.endpoints === 1 && s.counts.clusters === 1 && s.state === 'synced',
    );
    expect(m.state).toBe('synced');
    expect(m.problems).toBe(0);
    expect(m.counts.gateways).toBe(1);
    // west publishes a gateway endpoint: one tunnel peer in /metrics
    // the gauges follow the view a moment after the status counts do
    const metrics = await node.until(
      'mesh gauges',
      () => node.api('/metrics'),
      (r) => r.code === 200 && /^palisade_mesh_records\{kind="endpoint"\} 1$/m.test(r.body),
    );
    expect(metrics.body).toMatch(/^palisade_tunnel_peers 1$/m);
    expect(metrics.body).toMatch(/^palisade_mesh_records\{kind="endpoint"\} 1$/m);
    const ownNote = m.notes.find((n) => n.key === endpointKey('c1', 'shop', 'a'));
    expect(ownNote).toMatchObject({ kind: 'ignored' });
    expect(ownNote?.message).toContain('own cluster (c1)');
  });

  it('the MeshNetworkPolicy from the store is enforced on real traffic from west', async () => {
    expect(await fromWest()).toEqual({
      'a:7000': true,
      'a:7001': true,
      'b:7000': true,
      'b:7001': true,
    });
    await admin.putPolicy('west-to-b', mnp(7000));
    await node.until(
      'policy enforced',
      () => node.status(),
      (s) => s.policies.some((p) => p.name === 'west-to-b' && p.state === 'enforced'),
    );
    expect(await fromWest()).toEqual({
      'a:7000': true,
      'a:7001': true,
      'b:7000': true,
      'b:7001': false,
    });
    const deny = await node.until(
      'attributed deny record',
      async () => readRecords(node.path('flows.ndjson')),
      (rs) =>
        rs.some(
          (r) =>
            r.flow?.verdict === 'DROPPED' &&
            r.flow.source.endpoint_id === 'west/shop/w' &&
            r.flow.destination.endpoint_id === 'c1/shop/b',
        ),
    );
    const d = deny.find(
      (r) => r.flow?.verdict === 'DROPPED' && r.flow.source.endpoint_id === 'west/shop/w',
    )!.flow!;
    expect(d.source.cluster_name, JSON.stringify(d)).toBe('west');
    expect(d.traffic_direction, JSON.stringify(d)).toBe('INGRESS');
    expect(d.ingress_denied_by, JSON.stringify(d)).toEqual([
      expect.objectContaining({ kind: 'MeshNetworkPolicy', name: 'west-to-b' }),
    ]);
  });

  it('a changed policy in the store changes enforcement', async () => {
    await admin.putPolicy('west-to-b', mnp(7001));
    await node.until(
      'new revision',
      async () => fromWest(),
      (v) => v['b:7000'] === false && v['b:7001'] === true,
    );
    expect(await fromWest()).toEqual({
      'a:7000': true,
      'a:7001': true,
      'b:7000': false,
      'b:7001': true,
    });
  });

  it('hostile and bad records are reported with their key and change nothing', async () => {
    const bad = endpointKey('west', 'shop', 'bad-ip');
    const big = endpointKey('west', 'shop', 'big');
    await admin.client
      .put(bad)
      .value(JSON.stringify({ namespace: 'shop', name: 'bad-ip', ips: ['10.0.0.300'] }));
    await admin.client.put(big).value('x'.repeat(70_000));
    await admin.client.put('/palisade/clusters/west/whatever').value('{}');
    const m = await node.until('problems reported', meshStatus, (s) => s.problems === 3);
    const byKey = Object.fromEntries(m.notes.map((n) => [n.key, n.message]));
    expect(byKey[bad]).toContain('ips[0]: not an IP address');
    expect(byKey[big]).toContain('bytes, limit 65536; not read');
    expect(byKey['/palisade/clusters/west/whatever']).toContain(
      'does not fit the mesh store layout',
    );
    const st = await node.status();
    expect(st.lastError ?? null).toBeNull();
    expect(await fromWest()).toEqual({
      'a:7000': true,
      'a:7001': true,
      'b:7000': false,
      'b:7001': true,
    });
    for (const k of [bad, big, '/palisade/clusters/west/whatever'])
      await admin.client.delete().key(k);
    await node.until('problems gone', meshStatus, (s) => s.problems === 0);
  });

  it("west's lease expires → w leaves c1's world (its address is no longer west's)", async () => {
    await stopProc(west, 'SIGKILL');
    await node.until('w aged out', meshStatus, (s) => s.counts.endpoints === 0, 20_000);
    expect(await admin.client.get(endpointKey('west', 'shop', 'w')).string()).toBeNull();
    // The Deny rule for west's pods no longer matches an address nobody publishes.
    await node.until('unknown source', fromWest, (v) => v['b:7000'] === true);
    expect(await fromWest()).toEqual({
      'a:7000': true,
      'a:7001': true,
      'b:7000': true,
      'b:7001': true,
    });
  });

  it('etcd restarted → the source resumes from its revision (no re-read) and sees what follows', async () => {
    const before = await meshStatus();
    await etcd!.stop();
    await node.until('disconnected', meshStatus, (s) => s.state === 'disconnected', 20_000);
    etcd = await startEtcd(etcdOpts);
    west = startWest();
    await node.until('w back', meshStatus, (s) => s.counts.endpoints === 1, 30_000);
    // the watch may still be reconnecting (etcd3's own backoff) when w's put arrives
    const after = await node.until('synced', meshStatus, (m) => m.state === 'synced', 30_000);
    const why = `${JSON.stringify(after)}; agent stderr: ${node.agents.at(-1)?.stderr.slice(-3000)}`;
    expect(after.state, why).toBe('synced');
    expect(after.counts.fullReads, why).toBe(before.counts.fullReads);
    expect(BigInt(after.revision)).toBeGreaterThan(BigInt(before.revision));
    await node.until('enforced again', fromWest, (v) => v['b:7000'] === false);
  });

  it('compaction while disconnected → the source reads everything again', async () => {
    const before = await meshStatus();
    relay.sever();
    await node.until('disconnected', meshStatus, (s) => s.state === 'disconnected', 20_000);
    await admin.putPolicy('west-to-b', mnp(7000));
    // one more revision, so the watch's resume point (the put above) is compacted too
    await admin.client.put('/palisade-test/compaction').value('{}');
    const rev = (await admin.client.get('/palisade-test/compaction').exec()).header.revision;
    await admin.client.kv.compact({ revision: rev, physical: true });
    relay.restore();
    await node.until(
      'full re-read',
      meshStatus,
      (s) => s.state === 'synced' && s.counts.fullReads > before.counts.fullReads,
      30_000,
    );
    await node.until(
      'policy change seen',
      fromWest,
      (v) => v['b:7000'] === true && v['b:7001'] === false,
    );
  });

  it("c1's agent restarted: its records are re-put under a new lease, never deleted; the mesh policy stays enforced", async () => {
    const prefix = '/palisade/clusters/c1/endpoints/';
    const leases = async () =>
      Object.fromEntries(
        (await admin.client.getAll().prefix(prefix).exec()).kvs.map((kv) => [
          kv.key.toString(),
          String(kv.lease),
        ]),
      );
    const before = await leases();
    expect(Object.keys(before)).toHaveLength(3);
    let deletes = 0;
    let puts = 0;
    const w = await admin.client.watch().prefix(prefix).create();
    w.on('delete', () => deletes++).on('put', () => puts++);
    try {
      expect(await node.killAgent(east, 'SIGTERM')).toBe(0);
      east = node.startAgent(eastConfig);
      await node.until(
        'readyz',
        () => node.api('/readyz', 'none'),
        (r) => r.code === 200,
        30_000,
      );
      await node.until(
        're-put',
        async () => puts,
        (n) => n >= 3,
      );
      const after = await leases();
      expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
      for (const k of Object.keys(after)) expect(after[k]).not.toBe(before[k]);
      expect(deletes).toBe(0);
      expect(await fromWest()).toEqual({
        'a:7000': true,
        'a:7001': true,
        'b:7000': true,
        'b:7001': false,
      });
    } finally {
      await w.cancel();
    }
  });
});
