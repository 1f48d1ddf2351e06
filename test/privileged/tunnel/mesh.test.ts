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
import { Gateway, JoinRefusedError, type GatewayConfig, type PeerStatus } from '../../../tunnel/src/gateway.js';
import { MeshStore } from '../../../tunnel/src/mesh-store.js';
import { freePort, startEtcd, type EtcdHandle } from '../../../tunnel/src/etcd-process.js';
import { MeshTestbed, WG_BASE_PORT, type TestCluster } from '../../../tunnel/src/testbed.js';
import { UapiControl } from '../../../tunnel/src/control.js';
import { generateKeyPair } from '../../../tunnel/src/keys.js';
import { isWireguardGo } from '../../../tunnel/src/wireguard-go-process.js';

const KEEPALIVE = 1;
const STREAM = join(dirname(fileURLToPath(import.meta.url)), 'seq-stream.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
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
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
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
    leaseTtlSec: 3,
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
  return tb.exec(from.podNs, process.execPath, [STREAM, 'probe', to.podIP, String(ECHO_PORT), String(timeoutMs)], timeoutMs + 3000).then(() => true, () => false);
}

function spawnIn(ns: string, args: string[]): { child: ChildProcess; out: Promise<string> } {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => (buf += d.toString()));
  const out = new Promise<string>((resolve) => child.on('exit', () => resolve(buf)));
  return { child, out };
}

async function receiver(c: TestCluster, port: number, idleMs: number) {
  const r = spawnIn(c.podNs, [process.execPath, STREAM, 'recv', String(port), String(idleMs)]);
  await until('receiver ready', 5000, async () => (await Promise.race([r.out, sleep(50).then(() => '')])) !== null && true);
  await sleep(300);
  return r;
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
  it('converges to a full mesh: every pod reaches every other cluster\'s pod', async () => {
    for (const a of clusters) {
      for (const b of clusters) {
        if (a === b) continue;
        await until(`${a.name} sees ${b.name} up`, 20_000, async () => (await peerOf(gateways.get(a.name)!, b.name))?.state === 'up');
        await until(`UDP ${a.name} -> ${b.name}`, 10_000, () => reach(a, b));
      }
    }
    const st = await gateways.get('c1')!.status();
    expect(st.backend.backend).toBe('userspace');
    expect(st.devices).toHaveLength(1);
    expect(st.devices[0]!.mtu).toBe(1440);
    const p2 = st.peers.find((p) => p.cluster === 'c2')!;
    expect([...p2.allowedIPs].sort()).toEqual(['10.102.0.0/16', '10.2.0.0/16']);
    expect(p2.endpoint).toBe(`172.31.0.2:${WG_BASE_PORT}`);
    const routes = await tb.exec(clusters[0]!.gwNs, 'ip', ['route', 'show', 'dev', st.devices[0]!.iface]);
    expect(routes).toMatch(/10\.2\.0\.0\/16/);
    expect(routes).toMatch(/10\.103\.0\.0\/16/);
    // TCP across the mesh too.
    const srv = spawnIn(clusters[2]!.podNs, ['socat', '-u', 'TCP-LISTEN:7070,reuseaddr', 'STDOUT']);
    await sleep(300);
    await tb.exec(clusters[0]!.podNs, 'sh', ['-c', `echo tcp-through-tunnel | socat -u STDIN TCP:${clusters[2]!.podIP}:7070`]);
    expect((await srv.out).trim()).toBe('tcp-through-tunnel');
  });
});
