/**
 * Tunnel benchmark (root; network namespaces only). Prints one JSON object:
 *  - throughput (TCP, iperf3) and 64-byte UDP packets/s between two pods of
 *    two clusters, through the WireGuard tunnel and over the same namespaces
 *    with plain routes instead (same run), with the tunnel/plain ratio;
 *  - mesh convergence time (every gateway has a handshake with every peer)
 *    for 2, 4 and 8 clusters started at once;
 *  - rotation handover time (rotate → every gateway on the new epoch only,
 *    all peers up) for the same sizes.
 * Usage: node dist/bench/tunnel/run.js [--seconds N] [--sizes 2,4,8]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway, type GatewayConfig } from '../../tunnel/src/gateway.js';
import { MeshStore } from '../../tunnel/src/mesh-store.js';
import { freePort, startEtcd, type EtcdHandle } from '../../tunnel/src/etcd-process.js';
import { MeshTestbed, type TestCluster } from '../../tunnel/src/testbed.js';
import { run } from '../../tunnel/src/netns-ip.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const SECONDS = Number(arg('seconds', '3'));
const SIZES = arg('sizes', '2,4,8').split(',').map(Number);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function config(c: TestCluster, etcd: EtcdHandle, tmp: string): GatewayConfig {
  return {
    cluster: c.record,
    netns: c.gwNs,
    ifaceBase: c.ifaceBase,
    underlayMtu: 1500,
    keepaliveSec: 1,
    leaseTtlSec: 5,
    keyDir: join(tmp, 'keys', c.name),
    stateDir: join(tmp, 'state', c.name),
    etcdEndpoints: [etcd.endpoint],
    pollIntervalMs: 50,
  };
}

async function iperf(
  tb: MeshTestbed,
  from: TestCluster,
  to: TestCluster,
  udp64: boolean,
): Promise<number> {
  const server = spawn('ip', ['netns', 'exec', to.podNs, 'iperf3', '-s', '-1', '-p', '5201'], {
    stdio: 'ignore',
  });
  try {
    await sleep(300);
    const args = ['-c', to.podIP, '-p', '5201', '-t', String(SECONDS), '-J'];
    if (udp64) args.push('-u', '-l', '64', '-b', '0');
    const out = JSON.parse(await tb.exec(from.podNs, 'iperf3', args, (SECONDS + 15) * 1000)) as {
      end: {
        sum_received?: { bits_per_second: number };
        sum?: { packets: number; lost_packets: number; seconds: number };
      };
    };
    if (udp64) {
      const s = out.end.sum!;
      return (s.packets - s.lost_packets) / s.seconds;
    }
    return out.end.sum_received!.bits_per_second;
  } finally {
    if (server.exitCode === null && server.pid) process.kill(server.pid, 'SIGTERM');
  }
}

async function allUp(gws: Gateway[], n: number, epoch?: number): Promise<boolean> {
  for (const gw of gws) {
    const st = await gw.status();
    if (epoch !== undefined && (st.devices.length !== 1 || st.devices[0]!.epoch !== epoch))
      return false;
    const up = st.peers.filter(
      (p) => p.lastHandshakeSec > 0 && (epoch === undefined || p.epoch === epoch),
    );
    if (new Set(up.map((p) => p.cluster)).size !== n - 1) return false;
  }
  return true;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('bench/tunnel needs root (network namespaces, wireguard-go)');
  const tmp = mkdtempSync(join(tmpdir(), 'palisade-bench-tunnel-'));
  const tb = new MeshTestbed(`pb${process.pid.toString(36).slice(-4)}`);
  let etcd: EtcdHandle | null = null;
  const gateways: Gateway[] = [];
  const stores: MeshStore[] = [];
  const result: Record<string, unknown> = { seconds: SECONDS };
  try {
    etcd = await startEtcd({
      dataDir: join(tmp, 'etcd'),
      clientPort: await freePort(),
      peerPort: await freePort(),
    });
    await tb.createUnderlay();
    const max = Math.max(2, ...SIZES);
    const clusters: TestCluster[] = [];
    for (let i = 1; i <= max; i++) clusters.push(await tb.addCluster(i));
    const [a, b] = [clusters[0]!, clusters[1]!];

    // Same path without the tunnel: plain routes between the two gateways.
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      await run('ip', ['netns', 'exec', x.gwNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      await run('ip', ['-n', x.gwNs, 'route', 'add', `10.${y.index}.0.0/16`, 'via', y.underlayIP]);
    }
    const plainBps = await iperf(tb, a, b, false);
    const plainPps = await iperf(tb, a, b, true);
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const)
      await run('ip', ['-n', x.gwNs, 'route', 'del', `10.${y.index}.0.0/16`]);

    const start = async (cs: TestCluster[]): Promise<Gateway[]> => {
      const gws = cs.map((c) => {
        const s = MeshStore.connect([etcd!.endpoint]);
        stores.push(s);
        return new Gateway(config(c, etcd!, tmp), s);
      });
      await Promise.all(gws.map((g) => g.up()));
      gateways.push(...gws);
      return gws;
    };
    const stopAll = async (): Promise<void> => {
      for (const g of gateways.splice(0)) await g.down().catch(() => undefined);
    };

    const two = await start([a, b]);
    await until('2-cluster mesh', 30_000, () => allUp(two, 2));
    const tunnelBps = await iperf(tb, a, b, false);
    const tunnelPps = await iperf(tb, a, b, true);
    result['throughput'] = {
      plainBitsPerSecond: plainBps,
      tunnelBitsPerSecond: tunnelBps,
      ratio: tunnelBps / plainBps,
    };
    result['packets64'] = {
      plainPerSecond: plainPps,
      tunnelPerSecond: tunnelPps,
      ratio: tunnelPps / plainPps,
    };
    await stopAll();

    const convergence: Record<string, unknown>[] = [];
    for (const n of SIZES) {
      const t0 = Date.now();
      const gws = await start(clusters.slice(0, n));
      await until(`${n}-cluster mesh`, 60_000, () => allUp(gws, n));
      const convergeMs = Date.now() - t0;
      const epoch = (await gws[0]!.status()).epoch;
      const t1 = Date.now();
      await gws[0]!.rotate();
      await until(`${n}-cluster rotation`, 60_000, () => allUp(gws, n, epoch + 1));
      convergence.push({ clusters: n, convergeMs, rotationHandoverMs: Date.now() - t1 });
      await stopAll();
    }
    result['mesh'] = convergence;
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    for (const g of gateways) await g.down().catch(() => undefined);
    for (const s of stores) s.close();
    await etcd?.stop();
    await tb.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/tunnel: ${(e as Error).message}\n`);
  process.exit(1);
});
