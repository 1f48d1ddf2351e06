/**
 * The lab end to end through the built CLI (dist/cli/src/main.js):
 * `lab up` → `lab up` again (idempotent) → `lab demo` (observed == predicted,
 * and `palisade matrix` on the lab world says the same; inter-cluster traffic
 * on the underlay is only WireGuard UDP, the probes' plaintext marker never
 * appears there while it does on a cluster's own fabric) → `lab down` leaves
 * nothing (namespaces, processes, pins, mounts, files) → `lab down` again is
 * fine → a `lab up` killed with SIGKILL half-way is cleaned up by `lab down`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePrivileges } from '../../support/privileged.js';

const CLI = join(process.cwd(), 'dist/cli/src/main.js');
const LAB_DIR = `/run/palisade-lab-test-${process.pid}`;
// own names, so the suite can run next to a lab (or another run of this suite) on the machine
const P = `t${process.pid % 10000}-`;
const MARKER = 'PALISADE-LAB-PROBE';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], timeoutMs = 180_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args, '--lab-dir', LAB_DIR],
      { timeout: timeoutMs, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : -1
          : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** `palisade matrix` itself (no --lab-dir). */
function matrixCli(world: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'matrix', '-f', world, '-o', 'json'],
      { timeout: 60_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        resolve({ code: err ? -1 : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

interface State {
  runId: string;
  namespaces: string[];
  plannedNamespaces: string[];
  processes: { pid: number; role: string }[];
  pinDirs: string[];
}

const readState = (): State | null => {
  try {
    return JSON.parse(readFileSync(join(LAB_DIR, 'state.json'), 'utf8')) as State;
  } catch {
    return null;
  }
};

const netnsList = (): Promise<string[]> =>
  new Promise((resolve) =>
    execFile('ip', ['netns', 'list'], (_e, out) =>
      resolve(
        String(out)
          .split('\n')
          .map((l) => l.split(' ')[0] ?? '')
          .filter(Boolean),
      ),
    ),
  );

const pidAlive = (pid: number): boolean => {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !st.slice(st.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
};

function processesWith(token: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(token) && pidAlive(Number(e)))
        out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** Everything a lab run made is gone. */
async function expectNothingLeft(s: State): Promise<void> {
  const ns = new Set(await netnsList());
  expect([...new Set([...s.namespaces, ...s.plannedNamespaces])].filter((n) => ns.has(n))).toEqual(
    [],
  );
  expect(s.processes.filter((p) => pidAlive(p.pid))).toEqual([]);
  expect(processesWith(s.runId)).toEqual([]);
  expect(s.pinDirs.filter((d) => existsSync(d))).toEqual([]);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(
      (l) => s.namespaces.some((n) => l.includes(`/run/netns/${n} `)) || l.includes('palisade-lab'),
    );
  expect(mounts).toEqual([]);
  expect(existsSync(join(LAB_DIR, 'state.json'))).toBe(false);
  expect(existsSync(join(LAB_DIR, s.runId))).toBe(false);
}

function startCapture(ns: string, file: string): Promise<ChildProcess> {
  const p = spawn(
    'ip',
    ['netns', 'exec', ns, 'tcpdump', '-i', 'br0', '-U', '-s', '0', '-w', file],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tcpdump in ${ns} did not start`)), 10_000);
    p.stderr!.on('data', (d: Buffer) => {
      if (String(d).includes('listening on')) {
        clearTimeout(t);
        resolve(p);
      }
    });
    p.once('exit', (c) => reject(new Error(`tcpdump in ${ns} exited ${c}`)));
  });
}

function stopCapture(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.removeAllListeners('exit');
    p.once('exit', () => resolve());
    p.kill('SIGINT');
  });
}

const readPcap = (file: string): Promise<string> =>
  new Promise((resolve, reject) =>
    execFile('tcpdump', ['-r', file, '-nn', '-q'], { maxBuffer: 64 << 20 }, (e, out) =>
      e ? reject(e) : resolve(String(out)),
    ),
  );

const captures: ChildProcess[] = [];
const pcapUnderlay = `/tmp/palisade-lab-test-${process.pid}-underlay.pcap`;
const pcapFabric = `/tmp/palisade-lab-test-${process.pid}-fabric.pcap`;

beforeAll(() => {
  requirePrivileges('root', 'bpffs', 'netns', 'wireguard-go', 'etcd', 'tcpdump');
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build first`);
});

afterAll(async () => {
  for (const c of captures) await stopCapture(c);
  await cli(['lab', 'down']);
  rmSync(pcapUnderlay, { force: true });
  rmSync(pcapFabric, { force: true });
  rmSync(LAB_DIR, { recursive: true, force: true });
});

describe('palisade lab', () => {
  let first: State;

  it('lab up builds the lab and records it; a second lab up changes nothing', async () => {
    const up = await cli(['lab', 'up', '--prefix', P]);
    expect(up.stderr).toContain('lab up in');
    expect(up.code).toBe(0);
    first = readState()!;
    expect(first.namespaces.length).toBe(1 + 2 * (2 + 2 + 2 * 3));
    expect(first.processes.filter((p) => p.role === 'enforcer').length).toBe(4);
    expect(first.processes.filter((p) => p.role === 'gateway').length).toBe(2);
    expect(first.processes.every((p) => pidAlive(p.pid))).toBe(true);
    expect(first.pinDirs.every((d) => existsSync(d))).toBe(true);

    const st = await cli(['lab', 'status', '-o', 'json']);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.stdout) as {
      up: boolean;
      gateways: { peers: { state: string }[] }[];
      enforcers: { attached: { attached: boolean }[] }[];
    };
    expect(status.up).toBe(true);
    expect(status.gateways.flatMap((g) => g.peers.map((p) => p.state))).toEqual(['up', 'up']);
    expect(status.enforcers.flatMap((e) => e.attached.map((a) => a.attached)).every(Boolean)).toBe(
      true,
    );

    const again = await cli(['lab', 'up', '--prefix', P]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('already up');
    const second = readState()!;
    expect(second.runId).toBe(first.runId);
    expect(second.processes.map((p) => p.pid)).toEqual(first.processes.map((p) => p.pid));
  });

  it('lab demo: observed == predicted (== palisade matrix), the live change takes effect, the underlay carries only WireGuard', async () => {
    captures.push(
      await startCapture(`${P}underlay`, pcapUnderlay),
      await startCapture(`${P}west-sw`, pcapFabric),
    );
    const demo = await cli(['lab', 'demo', '--prefix', P, '-o', 'json']);
    for (const c of captures.splice(0)) await stopCapture(c);
    expect(demo.stderr).not.toContain('differ');
    expect(demo.code).toBe(0);
    const r = JSON.parse(demo.stdout) as {
      ok: boolean;
      world: string;
      probes: {
        from: string;
        to: string;
        protocol: string;
        port: number;
        predicted: string;
        observed: string;
      }[];
      mismatches: unknown[];
      denyFlows: { flow: { verdict: string } }[];
      metrics: Record<string, number>;
      change: {
        probes: { before: string; predicted: string; observed: string }[];
        mismatches: unknown[];
      };
      tunnel: { peers: { state: string; rxBytes: number }[] }[];
    };
    expect(r.mismatches).toEqual([]);
    expect(r.ok).toBe(true);
    // 12 pods: every ordered pair × 8 ports, both verdicts present
    expect(r.probes.length).toBe(12 * 11 * 8);
    expect(r.probes.map((p) => p.observed)).toEqual(r.probes.map((p) => p.predicted));
    expect(new Set(r.probes.map((p) => p.observed))).toEqual(new Set(['Allow', 'Deny']));

    // the prediction is what `palisade matrix` prints for the lab world
    const m = await matrixCli(r.world);
    expect(m.code).toBe(0);
    const matrix = new Map(
      (
        JSON.parse(m.stdout) as {
          probes: { from: string; to: string; protocol: string; port: number; verdict: string }[];
        }
      ).probes.map((p) => [`${p.from} ${p.to} ${p.protocol}/${p.port}`, p.verdict]),
    );
    expect(r.probes.map((p) => matrix.get(`${p.from} ${p.to} ${p.protocol}/${p.port}`))).toEqual(
      r.probes.map((p) => p.observed),
    );

    expect(
      Object.keys(r.metrics).some((k) =>
        k.startsWith('palisade_drops_total{reason="POLICY_DENIED"'),
      ),
    ).toBe(true);
    expect(r.denyFlows.length).toBeGreaterThan(0);
    expect(r.denyFlows.every((f) => f.flow.verdict === 'DROPPED')).toBe(true);
    expect(r.change.probes.length).toBeGreaterThan(0);
    expect(r.change.mismatches).toEqual([]);
    expect(
      r.change.probes.every((p) => p.before !== p.observed && p.observed === p.predicted),
    ).toBe(true);
    expect(r.tunnel.flatMap((g) => g.peers).every((p) => p.state === 'up' && p.rxBytes > 0)).toBe(
      true,
    );

    // allowed cross-cluster probes exist, so plaintext would have crossed the underlay
    const crossAllowed = r.probes.filter(
      (p) => p.from.split('/')[0] !== p.to.split('/')[0] && p.observed === 'Allow',
    );
    expect(crossAllowed.length).toBeGreaterThan(0);
    const underlay = readFileSync(pcapUnderlay);
    const fabric = readFileSync(pcapFabric);
    expect(fabric.includes(MARKER)).toBe(true); // the capture does see plaintext where it exists
    expect(underlay.includes(MARKER)).toBe(false);
    const lines = (await readPcap(pcapUnderlay)).split('\n').filter((l) => / IP /.test(l));
    expect(lines.length).toBeGreaterThan(100);
    const notWg = lines.filter(
      (l) => !/ IP 172\.29\.0\.\d+\.51820 > 172\.29\.0\.\d+\.51820: UDP/.test(l),
    );
    expect(notWg).toEqual([]);
  });

  it('encryption Required is enforced: without the tunnel mark the mesh flow east web -> west etl is dropped as UNENCRYPTED', async () => {
    const tcp = (fromNs: string, ip: string): Promise<boolean> =>
      new Promise((resolve) => {
        const js = `const s=require('net').connect(7000,'${ip}');s.on('data',()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(1),1500)`;
        execFile(
          'ip',
          ['netns', 'exec', fromNs, process.execPath, '-e', js],
          { timeout: 10_000 },
          (e) => resolve(!e),
        );
      });
    const addr = await new Promise<string>((resolve) =>
      execFile(
        'ip',
        ['-n', `${P}west-analytics-etl-0`, '-j', 'addr', 'show', 'dev', 'eth0'],
        (_e, out) =>
          resolve(
            (JSON.parse(String(out)) as { addr_info: { local: string }[] }[])[0]!.addr_info[0]!
              .local,
          ),
      ),
    );
    const status = async () =>
      JSON.parse((await cli(['lab', 'status', '-o', 'json'])).stdout) as {
        enforcers: { node: string; drops: Record<string, number>; attached: { pod: string }[] }[];
      };
    const node = (await status()).enforcers.find((e) =>
      e.attached.some((a) => a.pod === 'west/analytics/etl-0'),
    )!;
    expect(await tcp(`${P}east-shop-web-0`, addr)).toBe(true);
    // the node stops translating the gateway's "decrypted" DSCP into the datapath's mark
    await new Promise((resolve) =>
      execFile(
        'ip',
        [
          'netns',
          'exec',
          `${P}${node.node.replace('-node-', '-n')}`,
          'nft',
          'flush',
          'table',
          'ip',
          'pl_lab',
        ],
        resolve,
      ),
    );
    expect(await tcp(`${P}east-shop-web-0`, addr)).toBe(false);
    await new Promise((r) => setTimeout(r, 1200)); // enforcer status is written every 500 ms
    const after = (await status()).enforcers.find((e) => e.node === node.node)!;
    expect(after.drops['UNENCRYPTED']).toBeGreaterThan(node.drops['UNENCRYPTED'] ?? 0);
  });

  it('lab down removes everything; a second lab down is fine', async () => {
    const down = await cli(['lab', 'down']);
    expect(down.code).toBe(0);
    await expectNothingLeft(first);
    const again = await cli(['lab', 'down']);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('nothing to remove');
  });

  it('Ctrl-C (SIGINT) during lab up removes what it made', async () => {
    const up = spawn(process.execPath, [CLI, 'lab', 'up', '--prefix', P, '--lab-dir', LAB_DIR], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    up.stderr!.on('data', (d: Buffer) => (err += String(d)));
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !err.includes('[3/6]'))
      await new Promise((r) => setTimeout(r, 50));
    const s = readState()!;
    const exited = new Promise<number | null>((r) => up.once('exit', (c) => r(c)));
    process.kill(up.pid!, 'SIGINT');
    expect(await exited).toBe(130);
    expect(err).toContain('SIGINT: stopping and removing');
    await expectNothingLeft({ ...s, ...(readState() ?? {}) });
  });

  it('lab down after a lab up killed with SIGKILL half-way cleans everything', async () => {
    const up = spawn(process.execPath, [CLI, 'lab', 'up', '--prefix', P, '--lab-dir', LAB_DIR], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    up.stderr!.on('data', (d: Buffer) => (err += String(d)));
    // kill it once gateways are being started (namespaces, etcd and processes exist)
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !err.includes('[4/6]'))
      await new Promise((r) => setTimeout(r, 50));
    expect(err).toContain('[4/6]');
    await new Promise((r) => setTimeout(r, 300));
    const killed = new Promise((r) => up.once('exit', r));
    process.kill(up.pid!, 'SIGKILL');
    await killed;
    const s = readState()!;
    expect(s.namespaces.length).toBeGreaterThan(10);
    expect(s.processes.some((p) => pidAlive(p.pid))).toBe(true);

    const st = await cli(['lab', 'status', '-o', 'json']);
    expect(st.code).toBe(1); // not healthy
    const down = await cli(['lab', 'down']);
    expect(down.code).toBe(0);
    await expectNothingLeft(s);
  });
});
