/**
 * `palisade tunnel ...` as users run it (the built binary), on two clusters in
 * network namespaces with a private etcd: up, status, rotate, down, clean-up
 * after a manager that died, config errors, check-cidrs.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePrivileges } from '../../support/privileged.js';
import { freePort, startEtcd, type EtcdHandle } from '../../../tunnel/src/etcd-process.js';
import { MeshStore } from '../../../tunnel/src/mesh-store.js';
import { MeshTestbed, type TestCluster } from '../../../tunnel/src/testbed.js';
import { isWireguardGo } from '../../../tunnel/src/wireguard-go-process.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const MAIN = resolve(ROOT, 'dist/cli/src/main.js');

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}
/** The built CLI as users run it (bounded: 60 s). */
function palisade(args: string[]): Promise<CliRun> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { cwd: ROOT, timeout: 60_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : null
          : 0;
        done({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

const STREAM = join(dirname(fileURLToPath(import.meta.url)), 'seq-stream.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null | undefined | false> | T | null | undefined | false,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v) return v;
    await sleep(150);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}\nmanagers said:\n${managerLog.join('')}`,
  );
}

const tb = new MeshTestbed(`pc${process.pid.toString(36).slice(-4)}`);
const tmp = mkdtempSync(join(tmpdir(), 'palisade-tunnel-cli-'));
let etcd: EtcdHandle | null = null;
const clusters: TestCluster[] = [];
const managers = new Map<string, ChildProcess>();
const children: ChildProcess[] = [];
const cfgPath = (c: TestCluster) => join(tmp, `${c.name}.yaml`);

function writeConfig(c: TestCluster): void {
  writeFileSync(
    cfgPath(c),
    stringify({
      cluster: c.record,
      netns: c.gwNs,
      ifaceBase: c.ifaceBase,
      etcd: [etcd!.endpoint],
      keyDir: join(tmp, 'keys', c.name),
      stateDir: join(tmp, 'state', c.name),
      keepaliveSec: 1,
      leaseTtlSec: 5,
    }),
  );
}

function up(c: TestCluster): ChildProcess {
  const child = spawn(process.execPath, [MAIN, 'tunnel', 'up', '-c', cfgPath(c)], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  managers.set(c.name, child);
  // Keep the manager's stderr: a failing wait below prints it.
  child.stderr!.on('data', (d: Buffer) => managerLog.push(`[${c.name}] ${d.toString()}`));
  return child;
}
const managerLog: string[] = [];

interface StatusJson {
  epoch: number;
  devices: { epoch: number }[];
  peers: { cluster: string; state: string; epoch: number }[];
  managerRunning: boolean;
}
async function status(c: TestCluster): Promise<StatusJson | null> {
  const r = await palisade(['tunnel', 'status', '-c', cfgPath(c), '-o', 'json']);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as StatusJson) : null;
}

const exited = (ch: ChildProcess) =>
  new Promise<number | null>((r) =>
    ch.exitCode !== null ? r(ch.exitCode) : ch.once('exit', (code) => r(code)),
  );

beforeAll(async () => {
  requirePrivileges('root', 'netns', 'wireguard-go', 'etcd');
  if (!existsSync(MAIN))
    throw new Error(
      `${MAIN} is missing: build first with \`npm run -s build\` (scripts/test.sh does)`,
    );
  await tb.createUnderlay();
  for (const i of [1, 2]) clusters.push(await tb.addCluster(i));
  etcd = await startEtcd({
    dataDir: join(tmp, 'etcd'),
    clientPort: await freePort(),
    peerPort: await freePort(),
  });
  for (const c of clusters) writeConfig(c);
});

afterAll(async () => {
  for (const ch of children)
    if (ch.exitCode === null && ch.signalCode === null && ch.pid) process.kill(ch.pid, 'SIGTERM');
  for (const ch of children) await Promise.race([exited(ch), sleep(5000)]);
  for (const c of clusters) await palisade(['tunnel', 'down', '-c', cfgPath(c)]);
  await etcd?.stop();
  await tb.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

describe('palisade tunnel (built CLI)', () => {
  it('up, status, traffic, rotate, down', async () => {
    const [a, b] = [clusters[0]!, clusters[1]!];
    up(a);
    up(b);
    await until('both gateways see each other up', 30_000, async () => {
      const sa = await status(a);
      const sb = await status(b);
      return (
        sa?.peers.some((p) => p.cluster === b.name && p.state === 'up') &&
        sb?.peers.some((p) => p.cluster === a.name && p.state === 'up')
      );
    });
    const table = await palisade(['tunnel', 'status', '-c', cfgPath(a)]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^PEER\s+EPOCH\s+STATE\s+ENDPOINT/m);
    expect(table.stdout).toMatch(
      new RegExp(`^${b.name}\\s+0\\s+up\\s+172\\.31\\.0\\.2:51820`, 'm'),
    );
    const echo = spawn('ip', ['netns', 'exec', b.podNs, process.execPath, STREAM, 'echo', '7007'], {
      stdio: 'ignore',
    });
    children.push(echo);
    await until('UDP through the tunnel', 10_000, () =>
      tb.exec(a.podNs, process.execPath, [STREAM, 'probe', b.podIP, '7007', '1000'], 5000).then(
        () => true,
        () => false,
      ),
    );
    const rot = await palisade(['tunnel', 'rotate', '-c', cfgPath(a)]);
    expect(rot.code).toBe(0);
    expect(rot.stdout).toBe('rotation started: key epoch 1\n');
    await until('both gateways on epoch 1 only', 30_000, async () => {
      for (const c of [a, b]) {
        const s = await status(c);
        if (!(
          s &&
          s.devices.length === 1 &&
          s.devices[0]!.epoch === 1 &&
          s.peers.length === 1 &&
          s.peers[0]!.state === 'up'
        ))
          return false;
      }
      return true;
    });
    const down = await palisade(['tunnel', 'down', '-c', cfgPath(a)]);
    expect(down.code).toBe(0);
    expect(await exited(managers.get(a.name)!)).toBe(0);
    expect((await palisade(['tunnel', 'status', '-c', cfgPath(a)])).code).toBe(1);
    expect(await tb.exec(a.gwNs, 'ip', ['-o', 'link'])).not.toContain(a.ifaceBase);
  });

  it('down cleans up after a manager that died: wireguard-go by pid, store records', async () => {
    const b = clusters[1]!;
    const mgr = managers.get(b.name)!;
    const st = (await status(b))!;
    expect(st.managerRunning).toBe(true);
    process.kill(mgr.pid!, 'SIGKILL');
    await exited(mgr);
    const wgPid = (st as unknown as { devices: { pid: number; iface: string }[] }).devices[0]!;
    expect(isWireguardGo(wgPid.pid, wgPid.iface)).toBe(true); // the data plane outlives its manager
    const r = await palisade(['tunnel', 'down', '-c', cfgPath(b)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('cleaned up');
    expect(isWireguardGo(wgPid.pid, wgPid.iface)).toBe(false);
    const store = MeshStore.connect([etcd!.endpoint]);
    try {
      expect((await store.snapshot()).members.map((m) => m.name)).not.toContain(b.name);
    } finally {
      store.close();
    }
    expect(existsSync(join(tmp, 'state', b.name, `${b.name}.json`))).toBe(false);
  });

  it('config errors name the file and field; check-cidrs reports overlaps with exit 1', async () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(
      bad,
      stringify({
        cluster: { name: 'x', podCIDRs: ['10.0.0.1/8'], gateway: { endpoint: '1.2.3.4:5' } },
        netns: 'n',
        ifaceBase: 'w',
        etcd: ['http://127.0.0.1:1'],
        keyDir: '/k',
        stateDir: '/s',
      }),
    );
    const r = await palisade(['tunnel', 'up', '-c', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}: cluster.podCIDRs[0]: CIDR 10.0.0.1/8 has host bits set`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const world = join(tmp, 'world.yaml');
    writeFileSync(
      world,
      [
        'apiVersion: palisade.dev/v1alpha1\nkind: Cluster\nmetadata: {name: east}\nspec: {podCIDRs: [10.10.0.0/16], serviceCIDRs: [10.96.0.0/16], nodeCIDRs: [192.168.1.0/24], gateway: {endpoint: "172.31.0.1:51820"}}',
        'apiVersion: palisade.dev/v1alpha1\nkind: Cluster\nmetadata: {name: west}\nspec: {podCIDRs: [10.20.0.0/16], serviceCIDRs: [10.96.0.0/12], nodeCIDRs: [192.168.2.0/24], gateway: {endpoint: "172.31.0.2:51820"}}',
      ].join('\n---\n'),
    );
    const c = await palisade(['tunnel', 'check-cidrs', '-f', world, '-o', 'json']);
    expect(c.code).toBe(1);
    expect(JSON.parse(c.stdout).conflicts).toEqual([
      {
        a: { cluster: 'east', kind: 'service', cidr: '10.96.0.0/16' },
        b: { cluster: 'west', kind: 'service', cidr: '10.96.0.0/12' },
        overlap: '10.96.0.0/16',
      },
    ]);
    const ok = await palisade(['tunnel', 'check-cidrs', '-f', 'examples/world']);
    expect(ok.code).toBe(0);
  });
});
