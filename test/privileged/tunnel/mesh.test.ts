/**
 * Three clusters as network namespaces, a full WireGuard mesh over
 * wireguard-go, real etcd as the mesh store. Everything made here is removed
 * in afterAll (namespaces, wireguard-go and etcd by pid, temp dirs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePrivileges } from '../../support/privileged.js';
import {
  Gateway,
  JoinRefusedError,
  type GatewayConfig,
  type PeerStatus,
} from '../../../tunnel/src/gateway.js';
import { MeshStore } from '../../../tunnel/src/mesh-store.js';
import { freePort, startEtcd, type EtcdHandle } from '../../../tunnel/src/etcd-process.js';
import { MeshTestbed, WG_BASE_PORT, type TestCluster } from '../../../tunnel/src/testbed.js';
import { UapiControl, updatePeer } from '../../../tunnel/src/control.js';
import { generateKeyPair } from '../../../tunnel/src/keys.js';
import { isWireguardGo } from '../../../tunnel/src/wireguard-go-process.js';

// 2 s: short enough for a quick test, long enough that a loaded 2-core CI machine keeps up.
const KEEPALIVE = 2;
const STREAM = join(dirname(fileURLToPath(import.meta.url)), 'seq-stream.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
  );
}

const tb = new MeshTestbed(`pw${process.pid.toString(36).slice(-4)}`);
const tmp = mkdtempSync(join(tmpdir(), 'palisade-tunnel-'));
let etcd: EtcdHandle | null = null;
const clusters: TestCluster[] = [];
const gateways = new Map<string, Gateway>();
const stores: MeshStore[] = [];
const children: ChildProcess[] = [];

function config(c: TestCluster): GatewayConfig {
  return {
    cluster: c.record,
    netns: c.gwNs,
    ifaceBase: c.ifaceBase,
    underlayMtu: 1500,
    keepaliveSec: KEEPALIVE,
    leaseTtlSec: 10, // longer than the 3 x keepalive detection window, so peers see 'down' before the record ages out
    keyDir: join(tmp, 'keys', c.name),
    stateDir: join(tmp, 'state', c.name),
    etcdEndpoints: [etcd!.endpoint],
    pollIntervalMs: 250,
  };
}

async function startGateway(c: TestCluster): Promise<Gateway> {
  const store = MeshStore.connect([etcd!.endpoint]);
  stores.push(store);
  const gw = new Gateway(config(c), store);
  await gw.up();
  gateways.set(c.name, gw);
  return gw;
}

async function peerOf(gw: Gateway, cluster: string): Promise<PeerStatus | undefined> {
  const st = await gw.status();
  // The peer entry that the routes use: the newest epoch with a handshake, else the newest.
  const ps = st.peers.filter((p) => p.cluster === cluster).sort((a, b) => b.epoch - a.epoch);
  return ps[0];
}

const ECHO_PORT = 7007;
/** One UDP round trip pod to pod (through both gateways and the tunnel). */
async function reach(from: TestCluster, to: TestCluster, timeoutMs = 1000): Promise<boolean> {
  return tb
    .exec(
      from.podNs,
      process.execPath,
      [STREAM, 'probe', to.podIP, String(ECHO_PORT), String(timeoutMs)],
      timeoutMs + 3000,
    )
    .then(
      () => true,
      () => false,
    );
}

/** The same over IPv6 (pod addresses fd00:<i>:0:1::2, routed through the IPv4 underlay tunnel). */
async function reach6(from: TestCluster, to: TestCluster, timeoutMs = 1000): Promise<boolean> {
  return tb
    .exec(
      from.podNs,
      process.execPath,
      [STREAM, 'probe', to.podIP6, String(ECHO_PORT), String(timeoutMs)],
      timeoutMs + 3000,
    )
    .then(
      () => true,
      () => false,
    );
}

function spawnIn(
  ns: string,
  args: string[],
): { child: ChildProcess; out: Promise<string>; sofar: () => string } {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => (buf += d.toString()));
  // 'close', not 'exit': stdout may still hold data when the process has exited.
  const out = new Promise<string>((resolve) => child.on('close', () => resolve(buf)));
  return { child, out, sofar: () => buf };
}

interface StreamResult {
  received: number;
  lost: number;
  duplicates: number;
  reordered: number;
  maxDisplacement: number;
  maxSeq: number;
}

/** A sequence-stream receiver in a pod; `result` resolves when the stream has been idle for idleMs. */
async function receiver(
  c: TestCluster,
  port: number,
  idleMs: number,
): Promise<{ result: Promise<StreamResult> }> {
  const r = spawnIn(c.podNs, [process.execPath, STREAM, 'recv', String(port), String(idleMs)]);
  await until('receiver ready', 5000, async () => r.sofar().includes('ready'));
  const result = r.out.then(
    (text) => JSON.parse(text.trim().split('\n').pop() ?? '') as StreamResult,
  );
  return { result };
}

beforeAll(async () => {
  requirePrivileges('root', 'netns', 'wireguard-go', 'etcd', 'tcpdump');
  await tb.createUnderlay();
  for (const i of [1, 2, 3]) clusters.push(await tb.addCluster(i));
  const dataDir = join(tmp, 'etcd');
  etcd = await startEtcd({ dataDir, clientPort: await freePort(), peerPort: await freePort() });
  for (const c of clusters) spawnIn(c.podNs, [process.execPath, STREAM, 'echo', String(ECHO_PORT)]);
  for (const c of clusters) await startGateway(c);
});

afterAll(async () => {
  for (const ch of children) if (ch.exitCode === null && ch.pid) process.kill(ch.pid, 'SIGKILL');
  for (const gw of gateways.values()) await gw.down().catch(() => undefined);
  for (const s of stores) s.close();
  await etcd?.stop();
  await tb.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

describe('tunnel mesh over wireguard-go with etcd', () => {
  it("converges to a full mesh: every pod reaches every other cluster's pod", async () => {
    for (const a of clusters) {
      for (const b of clusters) {
        if (a === b) continue;
        await until(
          `${a.name} sees ${b.name} up`,
          20_000,
          async () => (await peerOf(gateways.get(a.name)!, b.name))?.state === 'up',
        );
        await until(`UDP ${a.name} -> ${b.name}`, 10_000, () => reach(a, b));
        await until(`UDP over IPv6 ${a.name} -> ${b.name}`, 10_000, () => reach6(a, b));
      }
    }
    const st = await gateways.get('c1')!.status();
    expect(st.backend.backend).toBe('userspace');
    expect(st.devices).toHaveLength(1);
    expect(st.devices[0]!.mtu).toBe(1440);
    const p2 = st.peers.find((p) => p.cluster === 'c2')!;
    expect([...p2.allowedIPs].sort()).toEqual(['10.102.0.0/16', '10.2.0.0/16', 'fd00:2::/48']);
    expect(p2.endpoint).toBe(`172.31.0.2:${WG_BASE_PORT}`);
    const routes = await tb.exec(clusters[0]!.gwNs, 'ip', [
      'route',
      'show',
      'dev',
      st.devices[0]!.iface,
    ]);
    expect(routes).toMatch(/10\.2\.0\.0\/16/);
    expect(routes).toMatch(/10\.103\.0\.0\/16/);
    const routes6 = await tb.exec(clusters[0]!.gwNs, 'ip', [
      '-6',
      'route',
      'show',
      'dev',
      st.devices[0]!.iface,
    ]);
    expect(routes6).toMatch(/^fd00:2::\/48 /m);
    expect(routes6).toMatch(/^fd00:3::\/48 /m);
    // TCP across the mesh too.
    const srv = spawnIn(clusters[2]!.podNs, ['socat', '-u', 'TCP-LISTEN:7070,reuseaddr', 'STDOUT']);
    await sleep(300);
    await tb.exec(clusters[0]!.podNs, 'sh', [
      '-c',
      `echo tcp-through-tunnel | socat -u STDIN TCP:${clusters[2]!.podIP}:7070`,
    ]);
    expect((await srv.out).trim()).toBe('tcp-through-tunnel');
    // Per-peer metrics, labelled by peer cluster (never by key).
    await gateways.get('c1')!.status();
    const text = await gateways.get('c1')!.metrics.registry.metrics();
    expect(text).toMatch(/^palisade_tunnel_peer_up\{peer_cluster="c2"\} 1$/m);
    expect(
      Number(/^wireguard_sent_bytes_total\{peer_cluster="c3"\} (\d+)$/m.exec(text)?.[1]),
    ).toBeGreaterThan(0);
    expect(
      Number(/^wireguard_received_bytes_total\{peer_cluster="c3"\} (\d+)$/m.exec(text)?.[1]),
    ).toBeGreaterThan(0);
    expect(
      Number(/^wireguard_latest_handshake_seconds\{peer_cluster="c2"\} (\d+)$/m.exec(text)?.[1]),
    ).toBeGreaterThan(1_600_000_000);
    expect(text).not.toContain(p2.endpoint!.split(':')[0]);
  });

  it('MeshNetworkPolicies are stored once under /palisade/policies/ and read by every member', async () => {
    const doc = {
      apiVersion: 'palisade.dev/v1alpha1',
      kind: 'MeshNetworkPolicy',
      metadata: { name: 'deny-all' },
      spec: { priority: 10 },
    };
    await stores[0]!.putPolicy('deny-all', doc);
    for (const s of stores.slice(1, 3)) expect((await s.policies()).get('deny-all')).toEqual(doc);
    await stores[1]!.deletePolicy('deny-all');
    expect((await stores[2]!.policies()).size).toBe(0);
  });

  it('the underlay carries only UDP to the WireGuard ports, never the plaintext payload', async () => {
    const [a, b] = [clusters[0]!, clusters[1]!];
    const pcap = join(tmp, 'underlay.pcap');
    const dump = spawn(
      'ip',
      [
        'netns',
        'exec',
        tb.underlay,
        'tcpdump',
        '-i',
        'br0',
        '-U',
        '-n',
        '-s',
        '0',
        '-w',
        pcap,
        'ip or ip6',
      ],
      { stdio: 'ignore' },
    );
    children.push(dump);
    await until('tcpdump writing', 5000, async () => existsSync(pcap));
    await sleep(500);
    const rx = await receiver(b, 9100, 1500);
    await tb.exec(
      a.podNs,
      process.execPath,
      [STREAM, 'send', b.podIP, '9100', '200', '200'],
      10_000,
    );
    const got = await rx.result;
    expect(got.received).toBe(200);
    process.kill(dump.pid!, 'SIGINT');
    await new Promise((r) => dump.once('exit', r));
    const raw = readFileSync(pcap);
    expect(raw.includes(Buffer.from('PALISADE-PLAINTEXT-MARKER'))).toBe(false);
    const text = await tb.exec(tb.underlay, 'tcpdump', ['-r', pcap, '-n', '-q'], 10_000);
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThanOrEqual(200);
    const wgPorts = new Set([WG_BASE_PORT, WG_BASE_PORT + 1]);
    const offenders = lines.filter((l) => {
      const m = / IP6? [\d.:a-f]+\.(\d+) > [\d.:a-f]+\.(\d+): UDP/.exec(l);
      return !m || !wgPorts.has(Number(m[2]));
    });
    expect(offenders).toEqual([]);
  });

  it('a killed gateway is reported down by its peers within 3 keepalives; restarted, traffic resumes by itself', async () => {
    const [a, b, c] = [clusters[0]!, clusters[1]!, clusters[2]!];
    const gwC = gateways.get(c.name)!;
    const pids = gwC.pids();
    expect(pids.length).toBe(1);
    // A crash: the manager stops without cleanup, wireguard-go dies by its pid.
    await gwC.detach();
    gateways.delete(c.name);
    const killedAt = Date.now();
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    // Bounded wait: 3 x keepalive (+ one status poll of slack).
    const bound = 3 * KEEPALIVE * 1000 + 300;
    for (const gw of [gateways.get(a.name)!, gateways.get(b.name)!]) {
      await until(
        'peer c3 reported down',
        Math.max(100, bound - (Date.now() - killedAt)),
        async () => (await peerOf(gw, c.name))?.state === 'down',
      );
    }
    expect(await reach(a, c, 500)).toBe(false);
    // Its lease expires: the dead cluster ages out of the store and out of every peer's device.
    await until(
      'c3 aged out of the store',
      25_000,
      async () => !(await stores[0]!.snapshot()).members.some((m) => m.name === c.name),
    );
    await until(
      'c1 dropped c3',
      5000,
      async () => (await peerOf(gateways.get(a.name)!, c.name)) === undefined,
    );
    await until('wireguard-go gone', 3000, async () =>
      pids.every((p) => !isWireguardGo(p, `${c.ifaceBase}a`)),
    );
    const gw2 = await startGateway(c);
    expect(gw2.pids()[0]).not.toBe(pids[0]);
    await until(
      'c1 sees c3 up again',
      20_000,
      async () => (await peerOf(gateways.get(a.name)!, c.name))?.state === 'up',
    );
    await until('UDP c1 -> c3 resumes', 10_000, () => reach(a, c));
    await until('UDP c3 -> c2 resumes', 10_000, () => reach(c, b));
  });

  it('rotation under traffic: keys change on every gateway with zero loss in both directions', async () => {
    const [a, b] = [clusters[0]!, clusters[1]!];
    const before = new Map<string, string>();
    for (const [n, gw] of gateways)
      before.set(n, JSON.stringify((await gw.status()).peers.map((p) => p.cluster)));
    const epoch0 = (await gateways.get(a.name)!.status()).epoch;
    const keysBefore = (await stores[0]!.snapshot()).members
      .map((m) => m.keys.map((k) => k.publicKey))
      .flat();
    const ab = await receiver(b, 9200, 2500);
    const ba = await receiver(a, 9201, 2500);
    const PPS = 400;
    const COUNT = PPS * 8;
    const s1 = tb.exec(
      a.podNs,
      process.execPath,
      [STREAM, 'send', b.podIP, '9200', String(PPS), String(COUNT)],
      30_000,
    );
    const s2 = tb.exec(
      b.podNs,
      process.execPath,
      [STREAM, 'send', a.podIP, '9201', String(PPS), String(COUNT)],
      30_000,
    );
    await sleep(1000);
    const epoch1 = await gateways.get(a.name)!.rotate();
    expect(epoch1).toBe(epoch0 + 1);
    // Handover done: every gateway runs one device, of the new epoch, with all peers up on it.
    await until('handover complete', 20_000, async () => {
      for (const gw of gateways.values()) {
        const st = await gw.status();
        if (st.devices.length !== 1 || st.devices[0]!.epoch !== epoch1) return false;
        if (st.peers.length !== 2 || st.peers.some((p) => p.epoch !== epoch1 || p.state !== 'up'))
          return false;
      }
      return true;
    });
    await Promise.all([s1, s2]);
    const r1 = await ab.result;
    const r2 = await ba.result;
    expect(r1).toMatchObject({ received: COUNT, lost: 0, duplicates: 0, maxSeq: COUNT - 1 });
    expect(r2).toMatchObject({ received: COUNT, lost: 0, duplicates: 0, maxSeq: COUNT - 1 });
    // The only reordering allowed is at the moment a route moves to the new device (packets on the old
    // path still in flight): a few packets, never a wider window than 1% of the stream.
    console.log(
      `rotation reordering: a->b ${r1.reordered} (max ${r1.maxDisplacement}), b->a ${r2.reordered} (max ${r2.maxDisplacement})`,
    );
    expect(r1.maxDisplacement).toBeLessThan(COUNT / 100);
    expect(r2.maxDisplacement).toBeLessThan(COUNT / 100);
    const keysAfter = (await stores[0]!.snapshot()).members
      .map((m) => m.keys.map((k) => k.publicKey))
      .flat();
    expect(keysAfter.filter((k) => keysBefore.includes(k))).toEqual([]);
    // Old key files are gone; the new one is 0600.
    expect(existsSync(join(tmp, 'keys', a.name, `${a.name}.${epoch0}.key`))).toBe(false);
    expect(existsSync(join(tmp, 'keys', a.name, `${a.name}.${epoch1}.key`))).toBe(true);
    for (const c of clusters)
      for (const d of clusters) if (c !== d) expect(await reach(c, d)).toBe(true);
  });

  it('a cluster joining with an overlapping pod CIDR is refused with the report, and nothing is routed', async () => {
    const d = await tb.addCluster(4, { podCIDR: '10.1.128.0/17' });
    const err = await startGateway(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JoinRefusedError);
    expect(String((err as Error).message)).toContain(
      'conflict: cluster c1 pod CIDR 10.1.0.0/16 overlaps cluster c4 pod CIDR 10.1.128.0/17 (overlap 10.1.128.0/17)',
    );
    const snap = await stores[0]!.snapshot();
    expect(snap.members.map((m) => m.name)).not.toContain('c4');
    expect(await tb.exec(d.gwNs, 'ip', ['-o', 'link', 'show'])).not.toContain(d.ifaceBase);
    // A conflicting record that reaches the store anyway (a race, a hand-written record) is refused by every gateway.
    const rogue = MeshStore.connect([etcd!.endpoint]);
    stores.push(rogue);
    await rogue.join(
      {
        name: 'rogue',
        labels: {},
        podCIDRs: ['10.2.0.0/24'],
        serviceCIDRs: [],
        nodeCIDRs: [],
        gateway: { endpoint: '172.31.0.9:51820' },
      },
      {
        endpointHost: '172.31.0.9',
        keys: [{ epoch: snap.epoch, publicKey: generateKeyPair().publicKey, port: 51820 }],
        routesEpoch: snap.epoch,
      },
      5,
    );
    for (const c of clusters) {
      const gw = gateways.get(c.name)!;
      await until(`${c.name} refuses rogue`, 5000, async () =>
        (await gw.status()).refused.some((r) => r.cluster === 'rogue'),
      );
      const st = await gw.status();
      expect(st.peers.map((p) => p.cluster)).not.toContain('rogue');
      const routes = await tb.exec(c.gwNs, 'ip', ['route']);
      expect(routes).not.toContain('10.1.128.0/17');
      expect(routes).not.toMatch(/^10\.2\.0\.0\/24 /m);
    }
    await rogue.leave();
    expect(await reach(clusters[0]!, clusters[1]!)).toBe(true);
  });

  it('bad input gives clear errors and keeps the previous state', async () => {
    const gw = gateways.get('c1')!;
    const iface = (await gw.status()).devices[0]!.iface;
    const ctl = new UapiControl(iface);
    const before = await ctl.get();
    // Peers in key order: wireguard-go lists them in map order.
    const strip = (s: typeof before) =>
      s.peers
        .map((p) => [p.publicKey, p.endpoint, [...p.allowedIPs].sort()])
        .sort((x, y) => String(x[0]).localeCompare(String(y[0])));
    // Malformed key: refused before anything is sent.
    await expect(
      ctl.set({ peers: [{ publicKey: 'not-a-key', allowedIPs: ['10.9.0.0/16'] }] }),
    ).rejects.toThrow(/peer public key: not a WireGuard key/);
    // Unknown peer: refused, not silently ignored.
    const stranger = generateKeyPair().publicKey;
    await expect(
      updatePeer(ctl, { publicKey: stranger, endpoint: '172.31.0.9:51820' }),
    ).rejects.toThrow(/is not configured on/);
    const after = await ctl.get();
    expect(JSON.stringify(strip(after), null, 1)).toBe(JSON.stringify(strip(before), null, 1));
    // Unreachable UAPI sockets: missing, and one that never answers (bounded by the call timeout).
    await expect(new UapiControl('pwnosuch0').get()).rejects.toThrow(/no such socket/);
    const silentPath = join(tmp, 'silent.sock');
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(silentPath, r));
    await expect(new UapiControl('silent', 300, silentPath).get()).rejects.toThrow(
      /no answer within 300 ms/,
    );
    silent.close();

    // A member whose record turns malformed keeps its last good peer and route; the error is reported.
    const snap = await stores[0]!.snapshot();
    const ghost = MeshStore.connect([etcd!.endpoint]);
    stores.push(ghost);
    const ghostKey = generateKeyPair().publicKey;
    await ghost.join(
      {
        name: 'ghost',
        labels: {},
        podCIDRs: ['10.8.0.0/16'],
        serviceCIDRs: [],
        nodeCIDRs: [],
        gateway: { endpoint: '172.31.0.8:51820' },
      },
      {
        endpointHost: '172.31.0.8',
        keys: [{ epoch: snap.epoch, publicKey: ghostKey, port: WG_BASE_PORT + (snap.epoch % 2) }],
        routesEpoch: snap.epoch,
      },
      5,
    );
    await until('c1 adds ghost', 5000, async () =>
      (await gw.status()).peers.some((p) => p.cluster === 'ghost'),
    );
    await ghost.updateGateway({
      endpointHost: '172.31.0.8',
      keys: [{ epoch: snap.epoch, publicKey: 'garbage', port: 1 }],
      routesEpoch: snap.epoch,
    });
    await until('c1 reports the bad record', 5000, async () =>
      (await gw.status()).storeErrors.some(
        (e) => e.includes('ghost') && e.includes('not a WireGuard key'),
      ),
    );
    const st = await gw.status();
    expect(st.peers.find((p) => p.cluster === 'ghost')?.endpoint).toBe(
      `172.31.0.8:${WG_BASE_PORT + (snap.epoch % 2)}`,
    );
    expect(await tb.exec(clusters[0]!.gwNs, 'ip', ['route'])).toMatch(/^10\.8\.0\.0\/16 dev /m);
    // It never answers a handshake although we keep initiating: reported (key mismatch or unreachable).
    await until('ghost handshake failing', 15_000, async () => {
      const p = (await gw.status()).peers.find((x) => x.cluster === 'ghost');
      return p?.state === 'down' && p.handshakeFailing;
    });
    await ghost.leave();
    await until(
      'ghost removed with its route',
      5000,
      async () =>
        !(await gw.status()).peers.some((p) => p.cluster === 'ghost') &&
        !/^10\.8\.0\.0\/16/m.test(await tb.exec(clusters[0]!.gwNs, 'ip', ['route'])),
    );
  });

  it('down removes devices, routes, processes and store records', async () => {
    const pids = [...gateways.values()].flatMap((g) => g.pids());
    for (const [name, gw] of [...gateways]) {
      await gw.down();
      gateways.delete(name);
    }
    for (const c of clusters) {
      expect(await tb.exec(c.gwNs, 'ip', ['-o', 'link', 'show'])).not.toContain(c.ifaceBase);
      expect(await tb.exec(c.gwNs, 'ip', ['route'])).not.toMatch(/^10\.\d+\.0\.0\/16/m);
      expect(
        existsSync(`/var/run/wireguard/${c.ifaceBase}a.sock`) ||
          existsSync(`/var/run/wireguard/${c.ifaceBase}b.sock`),
      ).toBe(false);
    }
    for (const pid of pids) expect(isWireguardGo(pid, '')).toBe(false);
    await until(
      'records gone',
      5000,
      async () => (await stores[0]!.snapshot()).members.length === 0,
    );
  });
});
