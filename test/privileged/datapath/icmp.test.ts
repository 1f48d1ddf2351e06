/**
 * ICMP echo (IPv4) and ICMPv6 echo with real traffic between pod namespaces,
 * the world compiled by the real compiler and synced into the real programs
 * (the production path: compile → Datapath.applyFull). ICMP has no ports, so
 * only rules that match every protocol and port (`ports` absent) apply to it:
 * a pair's ICMP verdict is the matrix's verdict for a probe no port-specific
 * rule matches. The test takes that verdict from the reference matrix (TCP,
 * UDP and SCTP on a port the world never names: allowed for all three =
 * allowed for every protocol) and checks that ping gets exactly it, with
 * replies passing back, and that neighbour discovery keeps working for every
 * pod, including one whose policy admits nothing.
 */
import { execFileSync } from 'node:child_process';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { PodTopology } from '../../../bench/datapath/topology.js';
import { Datapath } from '../../../enforcer/src/datapath/datapath.js';
import { compile } from '../../../policy-compiler/src/compile/compile.js';
import { loadWorldFromTexts } from '../../../policy-compiler/src/load/index.js';
import type { Protocol } from '../../../policy-compiler/src/model/index.js';
import { evaluateMatrix, prepareWorld } from '../../../policy-compiler/src/semantics/index.js';
import { requirePrivileges } from '../../support/privileged.js';
import { killLoader, startLoader, type LoaderInfo } from './loader.js';

const CLUSTER = 'c1';
const NS = 'icmp';
const NODE = 'n1';
/** topology pod i runs PODS[i] */
const PODS = ['a', 'b', 'c', 'd'] as const;
/** A port no rule of the world names: the matrix at this port is what "every protocol" rules decide. */
const UNNAMED_PORT = 39999;
const PING_COUNT = 2;
const pinDir = `/sys/fs/bpf/palisade-test-icmp-${process.pid}`;

const np = (name: string, spec: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace: NS, annotations: { 'palisade.dev/cluster': CLUSTER } },
  spec,
});
const app = (name: string): Record<string, unknown> => ({
  podSelector: { matchLabels: { app: name } },
});

/**
 * b admits a and d on every protocol (no `ports`); c admits a on TCP 7000
 * only; d admits nothing and may send TCP 7000 to a and anything to b.
 */
const POLICIES = [
  np('b-from-a-d-any-protocol', {
    podSelector: { matchLabels: { app: 'b' } },
    policyTypes: ['Ingress'],
    ingress: [{ from: [app('a'), app('d')] }],
  }),
  np('c-from-a-tcp-only', {
    podSelector: { matchLabels: { app: 'c' } },
    policyTypes: ['Ingress'],
    ingress: [{ from: [app('a')], ports: [{ protocol: 'TCP', port: 7000 }] }],
  }),
  np('d-isolated', {
    podSelector: { matchLabels: { app: 'd' } },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [],
    egress: [{ to: [app('a')], ports: [{ protocol: 'TCP', port: 7000 }] }, { to: [app('b')] }],
  }),
];

function worldText(topo: PodTopology): string {
  const ann = { 'palisade.dev/cluster': CLUSTER };
  const objs: unknown[] = [
    {
      apiVersion: 'palisade.dev/v1alpha1',
      kind: 'Cluster',
      metadata: { name: CLUSTER },
      spec: { podCIDRs: ['10.77.0.0/16', 'fd77::/16'] },
    },
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: NODE, annotations: ann },
      status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] },
    },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, annotations: ann } },
    ...PODS.map((name, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, annotations: ann, labels: { app: name } },
      spec: { nodeName: NODE, containers: [{ name: 'c' }] },
      status: {
        podIP: topo.pod(i).ip4,
        podIPs: [{ ip: topo.pod(i).ip4 }, { ip: topo.pod(i).ip6 }],
      },
    })),
    ...POLICIES,
  ];
  return objs.map((o) => `---\n${stringify(o)}`).join('');
}

const podId = (i: number): string => `${CLUSTER}/${NS}/${PODS[i]}`;

interface PingResult {
  readonly transmitted: number;
  readonly received: number;
}

/** `ping -c N -W 1` from pod `from` (bounded by the exec timeout); counts from its summary line. */
async function ping(topo: PodTopology, from: number, to: string): Promise<PingResult> {
  const args = ['-n', '-q', '-c', String(PING_COUNT), '-i', '0.2', '-W', '1', to];
  let out: string;
  try {
    out = await topo.exec(topo.pod(from).ns, 'ping', args, 10_000);
  } catch (e) {
    // exit 1 = no reply; the summary is still on stdout
    out = String((e as { stdout?: unknown }).stdout ?? '');
  }
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  if (!m) throw new Error(`ping ${to} from pod ${from}: no summary in ${JSON.stringify(out)}`);
  return { transmitted: Number(m[1]), received: Number(m[2]) };
}

/** IPv6 neighbour states in a namespace for one address ('' when there is no entry). */
async function neighState(topo: PodTopology, ns: string, dev: string, ip: string): Promise<string> {
  const entries = JSON.parse(
    await topo.exec(ns, 'ip', ['-6', '-j', 'neigh', 'show', 'dev', dev]),
  ) as { dst: string; state?: string[] }[];
  return (entries.find((e) => e.dst === ip)?.state ?? []).join(',');
}

let topo: PodTopology;
let dp: Datapath;
let loader: LoaderInfo | undefined;
/** "from->to" → expected ICMP verdict, from the reference matrix */
const expected = new Map<string, boolean>();

beforeAll(async () => {
  requirePrivileges('root', 'bpffs', 'netns');
  try {
    execFileSync('sh', ['-c', 'command -v ping'], { stdio: 'ignore' });
  } catch {
    throw new Error(
      'privileged test cannot run: missing ping (Debian package iputils-ping; scripts/setup.sh installs it)',
    );
  }
  Datapath.removePins(pinDir);
  topo = await PodTopology.create('ic', PODS.length);
  const text = worldText(topo);
  expect(text).not.toContain(String(UNNAMED_PORT));
  const loaded = loadWorldFromTexts([{ file: 'icmp-world.yaml', text }]);
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  expect(errors).toEqual([]);
  const result = compile(loaded.world);
  if (!result.ok) throw new Error(`compile failed: ${result.error.message}`);

  const protocols: Protocol[] = ['TCP', 'UDP', 'SCTP'];
  const matrix = evaluateMatrix(prepareWorld(loaded.world), {
    ports: protocols.map((protocol) => ({ protocol, port: UNNAMED_PORT })),
    externals: [],
  });
  const pods = new Set(PODS.map((_, i) => podId(i)));
  const allowedBy = new Map<string, number>();
  for (const v of matrix) {
    if (!pods.has(v.probe.from) || !pods.has(v.probe.to) || v.probe.from === v.probe.to) continue;
    const k = `${v.probe.from}->${v.probe.to}`;
    allowedBy.set(k, (allowedBy.get(k) ?? 0) + (v.verdict === 'Allow' ? 1 : 0));
  }
  for (const [k, n] of allowedBy) expected.set(k, n === protocols.length);

  dp = Datapath.open({ pinDir, adopt: false, denyEventsPerSec: 0 });
  const ifindex = new Map(PODS.map((_, i) => [podId(i), topo.pod(i).ifindex]));
  dp.applyFull(result.compiled.encoded, (id) => ifindex.get(id));
  loader = await startLoader(
    topo.nodeNs,
    pinDir,
    topo.pods.map((p) => p.ifindex),
  );
});

afterAll(async () => {
  if (loader) await killLoader(loader);
  await topo?.cleanup();
  dp?.close();
  Datapath.removePins(pinDir);
});

/** Flushes the IPv6 neighbour tables of the node and every pod. */
async function flushNeighbours(): Promise<void> {
  for (const ns of [topo.nodeNs, ...topo.pods.map((p) => p.ns)])
    await topo.exec(ns, 'ip', ['-6', 'neigh', 'flush', 'all']);
}

/** Pings every ordered pod pair concurrently (separate sockets, echo identifiers): got vs want lines. */
async function pingAllPairs(v: 4 | 6): Promise<{ got: string[]; want: string[]; denied: number }> {
  const pairs: [number, number][] = [];
  for (let from = 0; from < PODS.length; from++)
    for (let to = 0; to < PODS.length; to++) if (from !== to) pairs.push([from, to]);
  const results = await Promise.all(
    pairs.map(([from, to]) => ping(topo, from, v === 4 ? topo.pod(to).ip4 : topo.pod(to).ip6)),
  );
  const got: string[] = [];
  const want: string[] = [];
  let denied = 0;
  pairs.forEach(([from, to], i) => {
    const r = results[i]!;
    const allow = expected.get(`${podId(from)}->${podId(to)}`);
    if (allow === false) denied += r.transmitted;
    want.push(`${PODS[from]}->${PODS[to]} ${allow ? PING_COUNT : 0}/${PING_COUNT}`);
    got.push(`${PODS[from]}->${PODS[to]} ${r.received}/${r.transmitted}`);
  });
  return { got, want, denied };
}

describe('ICMP and ICMPv6 echo through the datapath', () => {
  it('the world has allowed pairs, pairs allowed for TCP only, and pairs with nothing allowed', () => {
    // a fixture check: without all three kinds the next tests would prove little
    expect(expected.size).toBe(PODS.length * (PODS.length - 1));
    expect(expected.get(`${podId(0)}->${podId(1)}`)).toBe(true); // b admits a, every protocol
    expect(expected.get(`${podId(0)}->${podId(2)}`)).toBe(false); // c admits a on TCP 7000 only
    expect(expected.get(`${podId(3)}->${podId(0)}`)).toBe(false); // d may send TCP 7000 only
    expect(expected.get(`${podId(0)}->${podId(3)}`)).toBe(false); // d admits nothing
  });

  for (const v of [4, 6] as const) {
    it(`ping over IPv${v} gets exactly the matrix's verdict for every pod pair, replies pass`, async () => {
      // IPv6 from empty neighbour tables: every resolution runs through the programs
      if (v === 6) await flushNeighbours();
      const before = dp.dropStats().POLICY_DENIED.packets;
      const { got, want, denied } = await pingAllPairs(v);
      expect(got).toEqual(want);
      // each denied echo request was dropped by the datapath's default deny, not lost elsewhere
      expect(dp.dropStats().POLICY_DENIED.packets - before).toBeGreaterThanOrEqual(BigInt(denied));
    });
  }

  it('replies pass where a new connection in the reply direction is denied (d isolated)', async () => {
    // d admits nothing, so b -> d is denied as a new flow; d -> b is allowed and its replies come back
    expect(expected.get(`${podId(1)}->${podId(3)}`)).toBe(false);
    expect(expected.get(`${podId(3)}->${podId(1)}`)).toBe(true);
    for (const v of [4, 6] as const) {
      const [b, d] =
        v === 4 ? [topo.pod(1).ip4, topo.pod(3).ip4] : [topo.pod(1).ip6, topo.pod(3).ip6];
      expect(await ping(topo, 3, b)).toEqual({ transmitted: PING_COUNT, received: PING_COUNT });
      expect(await ping(topo, 1, d)).toEqual({ transmitted: PING_COUNT, received: 0 });
    }
  });

  it('neighbour discovery works for every pod, the isolated one included', async () => {
    await flushNeighbours();
    // every pod sends to and receives from (or is sent to by) every other pod: the node
    // resolves every pod and every pod its router, whatever the policy says of the echo
    const { got, want } = await pingAllPairs(6);
    expect(got).toEqual(want);
    const resolved = /REACHABLE|STALE|DELAY|PROBE/;
    for (const p of topo.pods) {
      expect(await neighState(topo, topo.nodeNs, p.hostIf, p.ip6)).toMatch(resolved);
      expect(await neighState(topo, p.ns, 'eth0', `fd77:${p.index + 1}::1`)).toMatch(resolved);
    }
  });
});
