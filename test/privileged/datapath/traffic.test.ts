/**
 * Real traffic: pods are network namespaces with veth pairs into a node
 * namespace; a loader process inside the node namespace attaches the real
 * programs; this process writes the pinned maps. TCP and UDP over IPv4 and
 * IPv6 give exactly the expected verdicts, replies pass, a revoked allow
 * stops an established connection, 1,000 atomic policy flips never let
 * through what neither policy allows, and kill -9 of the loader neither
 * stops enforcement nor leaves a gap when a new loader adopts the pins:
 * tcx links (the default here) updated in place, a forced switch to the
 * clsact fallback and back, and detach (links unpinned, traffic unfiltered).
 */
import { readdirSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PodTopology, type PodAgent } from '../../../bench/datapath/topology.js';
import {
  Datapath,
  tcxLinkPinName,
  type AttachMode,
  type AttachModeChoice,
} from '../../../enforcer/src/datapath/datapath.js';
import { ID_ANY, IPPROTO } from '../../../enforcer/src/datapath/structs.js';
import type { PalEvent } from '../../../enforcer/src/flows/event-decode.js';
import type { CompiledTable, EncodedTables } from '../../../policy-compiler/src/compiled.js';
import { requirePrivileges } from '../../support/privileged.js';
import { ALLOW, DENY, allowAll, endpoint, ipc, rule, table, tables } from './fixtures.js';
import { killLoader, startLoader, type LoaderInfo } from './loader.js';

const ID = [300, 301, 302];
const TCP_PORTS = [7000, 7001, 7002];
const UDP_PORTS = [5001, 5002, 5003];
const pinDir = `/sys/fs/bpf/palisade-test-${process.pid}`;

let topo: PodTopology;
let dp: Datapath;
let loader: LoaderInfo | undefined;
const agents: PodAgent[] = [];
const events: PalEvent[] = [];

// a (0) may reach b (1) on TCP 7000-7001 and UDP 5001; b admits a on TCP
// 7000-7001 and UDP 5001-5003; c (2) allows everything itself but b does
// not admit it; a and b admit no new ingress at all; b initiates nothing.
const tcpRange = (peer: number, cookie: number) => [
  rule(
    { identity: peer, protocol: IPPROTO.TCP, port: 7000, portBits: 15 },
    { verdict: ALLOW, precedence: 10, cookie },
  ),
];
const egressA = (): CompiledTable =>
  table(10, [
    ...tcpRange(ID[1]!, 1),
    rule(
      { identity: ID[1]!, protocol: IPPROTO.UDP, port: 5001 },
      { verdict: ALLOW, precedence: 10, cookie: 1 },
    ),
  ]);
const ingressB = (tcp = true): CompiledTable =>
  table(21, [
    ...(tcp
      ? tcpRange(ID[0]!, 2)
      : [
          rule(
            { identity: ID[0]!, protocol: IPPROTO.TCP, port: 7000 },
            { verdict: ALLOW, precedence: 10, cookie: 2 },
          ),
        ]),
    ...UDP_PORTS.map((p) =>
      rule(
        { identity: ID[0]!, protocol: IPPROTO.UDP, port: p },
        { verdict: ALLOW, precedence: 10, cookie: 2 },
      ),
    ),
  ]);

function world(): EncodedTables {
  return tables({
    ipcache: topo.pods.flatMap((p, i) => [ipc(p.ip4, ID[i]!), ipc(p.ip6, ID[i]!)]),
    endpoints: [
      endpoint('p0', ID[0]!, 10, 11),
      endpoint('p1', ID[1]!, 20, 21),
      endpoint('p2', ID[2]!, 30, 31),
    ],
    tables: [egressA(), table(11, []), table(20, []), ingressB(), allowAll(30), allowAll(31)],
  });
}
const ifindexOf = (id: string): number | undefined => topo.pods[Number(id.slice(1))]?.ifindex;

beforeAll(async () => {
  requirePrivileges('root', 'bpffs', 'netns');
  Datapath.removePins(pinDir);
  topo = await PodTopology.create('dp', 3);
  for (let i = 0; i < 3; i++) {
    const a = await topo.agent(i);
    await a.call({ op: 'serve', tcpPorts: TCP_PORTS, udpPorts: UDP_PORTS });
    agents.push(a);
  }
  // this process only writes maps (it lives in the root netns)
  dp = Datapath.open({ pinDir, adopt: false, denyEventsPerSec: 0 });
  dp.onEvent((e) => events.push(e));
  dp.applyFull(world(), ifindexOf);
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

const A = () => agents[0]!;
const ip = (i: number, v: 4 | 6) => (v === 4 ? topo.pod(i).ip4 : topo.pod(i).ip6);

describe('datapath with real traffic in network namespaces', () => {
  it('TCP and UDP probes over IPv4 and IPv6 give exactly the expected verdicts (replies pass)', async () => {
    const cases: [number, number, 'tcp' | 'udp', number, boolean][] = [
      [0, 1, 'tcp', 7000, true],
      [0, 1, 'tcp', 7001, true],
      [0, 1, 'tcp', 7002, false], // a's egress does not allow it
      [0, 1, 'udp', 5001, true],
      [0, 1, 'udp', 5002, false],
      [2, 1, 'tcp', 7000, false], // b's ingress does not admit c
      [2, 1, 'udp', 5001, false],
      [1, 0, 'tcp', 7000, false], // b initiates nothing
      [2, 0, 'tcp', 7000, false], // a admits no ingress
      [0, 2, 'tcp', 7000, false], // a's egress does not name c
    ];
    const got: string[] = [];
    const want: string[] = [];
    for (const v of [4, 6] as const) {
      for (const [from, to, proto, port, expected] of cases) {
        const ag = agents[from]!;
        const ok =
          proto === 'tcp' ? await ag.tcp(ip(to, v), port, 800) : await ag.udp(ip(to, v), port, 800);
        got.push(`v${v} ${from}->${to} ${proto}/${port} ${ok}`);
        want.push(`v${v} ${from}->${to} ${proto}/${port} ${expected}`);
      }
    }
    expect(got).toEqual(want);
    dp.drainEvents();
    expect(
      events.some((e) => e.type === 'NEW_ALLOWED' && e.dport === 7000 && e.ipVersion === 6),
    ).toBe(true);
    expect(
      events.some((e) => e.type === 'DENY' && e.dport === 7002 && e.direction === 'EGRESS'),
    ).toBe(true);
  });

  it('an established TCP connection stops after its allow is removed', async () => {
    const revokedBefore = dp.dropStats().REVOKED.packets;
    const held = await A().call({
      op: 'hold',
      host: ip(1, 4),
      port: 7001,
      intervalMs: 50,
      silenceMs: 400,
      maxMs: 10_000,
    });
    expect(held.ok).toBe(true);
    const early = await A().waitEvent((e) => e['id'] === held.id, 600);
    expect(early).toBeNull(); // still flowing while allowed
    dp.applyDelta(
      {
        ipcache: { upsert: [], remove: [] },
        endpoints: { upsert: [], remove: [] },
        tables: { replace: [ingressB(false)], patch: [], remove: [] },
      },
      ifindexOf,
    );
    const stopped = await A().waitEvent((e) => e['id'] === held.id, 5000);
    expect(stopped?.['why']).toBe('silence');
    expect(dp.dropStats().REVOKED.packets).toBeGreaterThan(revokedBefore);
    expect(await A().tcp(ip(1, 4), 7001, 800)).toBe(false);
    expect(await A().tcp(ip(1, 4), 7000, 800)).toBe(true);
    dp.replaceTable(ingressB());
    expect(await A().tcp(ip(1, 4), 7001, 800)).toBe(true);
  });

  it('1,000 atomic policy flips under load never allow what neither policy allows', async () => {
    // Both policies deny UDP 5003 to b and allow 5001/5002; they differ in
    // which lookup (identity or ANY) carries which entry, plus 300 filler
    // entries each. A half-written table could let 5003 through.
    const fill = (base: number) =>
      Array.from({ length: 300 }, (_, i) =>
        rule(
          { identity: base + i, protocol: IPPROTO.TCP, port: 1 + i },
          { verdict: ALLOW, precedence: 5, cookie: 60 },
        ),
      );
    const p1 = table(10, [
      ...tcpRange(ID[1]!, 1),
      rule(
        { identity: ID[1]!, protocol: IPPROTO.UDP, port: 5003 },
        { verdict: DENY, precedence: 100, cookie: 50, flags: 8 },
      ),
      rule(
        { identity: ID_ANY, protocol: IPPROTO.UDP },
        { verdict: ALLOW, precedence: 10, cookie: 51 },
      ),
      ...fill(1000),
    ]);
    const p2 = table(10, [
      ...tcpRange(ID[1]!, 1),
      rule(
        { identity: ID_ANY, protocol: IPPROTO.UDP, port: 5003 },
        { verdict: DENY, precedence: 100, cookie: 52, flags: 8 },
      ),
      rule(
        { identity: ID[1]!, protocol: IPPROTO.UDP },
        { verdict: ALLOW, precedence: 10, cookie: 53 },
      ),
      ...fill(2000),
    ]);
    dp.replaceTable(p1);
    const rx0 = (await agents[1]!.call({ op: 'stats' }))['udp'] as Record<string, number>;
    const denyBefore = dp.dropStats().POLICY_DENY.packets;
    const flood = A().call(
      { op: 'flood', host: ip(1, 4), ports: UDP_PORTS, burst: 3, intervalMs: 1, durationMs: 4000 },
      30_000,
    );
    await new Promise((r) => setTimeout(r, 200));
    const empty = { ipcache: { upsert: [], remove: [] }, endpoints: { upsert: [], remove: [] } };
    for (let i = 0; i < 1000; i++) {
      dp.applyDelta(
        { ...empty, tables: { replace: [i % 2 === 0 ? p2 : p1], patch: [], remove: [] } },
        ifindexOf,
      );
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    const sent = (await flood)['sent'] as Record<string, number>;
    await new Promise((r) => setTimeout(r, 300));
    const rx1 = (await agents[1]!.call({ op: 'stats' }))['udp'] as Record<string, number>;
    const rx = (p: number) => (rx1[p] ?? 0) - (rx0[p] ?? 0);
    expect(sent['5003']).toBeGreaterThan(1000);
    expect(rx(5003)).toBe(0);
    expect(rx(5001)).toBeGreaterThan(0);
    expect(rx(5002)).toBeGreaterThan(0);
    // every 5003 datagram was dropped by one of the two explicit deny rules
    expect(dp.dropStats().POLICY_DENY.packets - denyBefore).toBe(BigInt(sent['5003']!));
    expect(dp.ruleCounter(50).packets + dp.ruleCounter(52).packets).toBeGreaterThanOrEqual(
      BigInt(sent['5003']!),
    );
    dp.replaceTable(egressA());
  });

  /**
   * kill -9 of the loader, then (under a UDP flood a -> b) a new loader with
   * the given attach mode adopts the pins: every datagram arrives and nothing
   * is dropped, so there was no window without a program; then the
   * verdicts still hold.
   */
  /** Packets the kernel dropped on an interface's transmit side (`ip -s link`: TX dropped). */
  async function txDropped(ns: string, ifname: string): Promise<number> {
    const out = await topo.lab.exec(ns, 'ip', ['-s', '-j', 'link', 'show', 'dev', ifname]);
    const n = (JSON.parse(out) as { stats64?: { tx?: { dropped?: number } } }[])[0]?.stats64?.tx
      ?.dropped;
    if (typeof n !== 'number') throw new Error(`no tx dropped counter for ${ifname} in ${ns}`);
    return n;
  }

  /** UDP datagrams a namespace's sockets dropped for a full receive buffer (IPv4 and IPv6 MIBs). */
  async function udpRcvbufErrors(ns: string): Promise<number> {
    const v4 = await topo.lab.exec(ns, 'cat', ['/proc/net/snmp']);
    const [names, values] = v4.split('\n').filter((l) => l.startsWith('Udp: '));
    const i = (names ?? '').split(' ').indexOf('RcvbufErrors');
    const v6 = await topo.lab.exec(ns, 'cat', ['/proc/net/snmp6']);
    const m6 = /^Udp6RcvbufErrors\s+(\d+)$/m.exec(v6);
    if (i < 0 || values === undefined || m6 === null) throw new Error(`no RcvbufErrors in ${ns}`);
    return Number(values.split(' ')[i]) + Number(m6[1]);
  }

  async function restartUnderFlood(attach: AttachModeChoice): Promise<LoaderInfo> {
    await killLoader(loader!);
    loader = undefined;
    // enforcement without any loader process
    expect(await A().tcp(ip(1, 4), 7000, 800)).toBe(true);
    expect(await A().tcp(ip(1, 4), 7002, 800)).toBe(false);
    expect(await agents[2]!.tcp(ip(1, 4), 7000, 800)).toBe(false);

    const drops = () => Object.values(dp.dropStats()).reduce((n, c) => n + c.packets, 0n);
    const rcvbuf0 = await udpRcvbufErrors(topo.pods[1]!.ns);
    const grafted0 = await txDropped(topo.nodeNs, topo.pods[1]!.hostIf);
    const rx0 = (await agents[1]!.call({ op: 'stats' }))['udp'] as Record<string, number>;
    const dropsBefore = drops();
    const flood = A().call(
      { op: 'flood', host: ip(1, 4), ports: [5001], burst: 1, intervalMs: 1, durationMs: 3000 },
      30_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    const next = await startLoader(topo.nodeNs, pinDir, ifindexes(), attach);
    loader = next;
    const sent = (await flood)['sent'] as Record<string, number>;
    await new Promise((r) => setTimeout(r, 300));
    const rx1 = (await agents[1]!.call({ op: 'stats' }))['udp'] as Record<string, number>;
    expect(sent['5001']).toBeGreaterThan(100);
    // Every datagram reached the receiver's socket (read by it, or dropped by its socket
    // buffer because the receiving process stalled on a loaded machine), except those the
    // kernel drops, and counts as tx drops, while it grafts a clsact qdisc onto the live
    // host interface (qdisc_graft deactivates the device: the clsact fallback only).
    const overflowed = (await udpRcvbufErrors(topo.pods[1]!.ns)) - rcvbuf0;
    const grafted = (await txDropped(topo.nodeNs, topo.pods[1]!.hostIf)) - grafted0;
    if (attach !== 'clsact') expect(grafted).toBe(0);
    expect((rx1['5001'] ?? 0) - (rx0['5001'] ?? 0) + overflowed + grafted).toBe(sent['5001']);
    expect(drops()).toBe(dropsBefore);
    // the new loader's programs decide: allowed, denied by a's egress, denied by b's ingress
    expect(await A().tcp(ip(1, 6), 7001, 800)).toBe(true);
    expect(await A().tcp(ip(1, 4), 7002, 800)).toBe(false);
    expect(await agents[2]!.tcp(ip(1, 4), 7000, 800)).toBe(false);
    return next;
  }

  const tcxPins = () => readdirSync(pinDir).filter((n) => n.startsWith('tcx_'));
  const ifindexes = () => topo.pods.map((p) => p.ifindex);
  const expectOnly = (l: LoaderInfo, mode: AttachMode) => {
    for (const [i, a] of l.after.entries()) {
      expect(a).toEqual({ mode, ingress: l.programs.ingress, egress: l.programs.egress });
      const k = l.kernel[i]!;
      if (mode === 'tcx') {
        expect(k).toEqual({
          tcxIngress: [l.programs.ingress],
          tcxEgress: [l.programs.egress],
          clsactIngress: null,
          clsactEgress: null,
        });
      } else {
        expect(k).toEqual({
          tcxIngress: [],
          tcxEgress: [],
          clsactIngress: l.programs.ingress,
          clsactEgress: l.programs.egress,
        });
      }
    }
  };

  it('kill -9 of the loader keeps enforcing; a new loader adopts the pinned tcx links without a gap', async () => {
    const first = loader!;
    // this kernel has tcx: the default mode uses links, pinned next to the maps
    expect(first.mode).toBe('tcx');
    expectOnly(first, 'tcx');
    expect(tcxPins().sort()).toEqual(
      ifindexes()
        .flatMap((i) => [tcxLinkPinName(i, 'egress'), tcxLinkPinName(i, 'ingress')])
        .sort(),
    );
    const next = await restartUnderFlood('auto');
    expect(next.mode).toBe('tcx');
    // the links the killed loader pinned were still running its programs ...
    for (const b of next.before) {
      expect(b).toEqual({
        mode: 'tcx',
        ingress: first.programs.ingress,
        egress: first.programs.egress,
      });
    }
    // ... and now run the new ones (BPF_LINK_UPDATE on the same links)
    expect(next.programs.ingress).not.toBe(first.programs.ingress);
    expectOnly(next, 'tcx');
  });

  it('forced clsact (the fallback path): a restarted loader switches tcx -> clsact without a gap', async () => {
    const previous = loader!;
    const next = await restartUnderFlood('clsact');
    expect(next.mode).toBe('clsact');
    expect(next.reason).toMatch(/forced/);
    expect(next.before[0]).toEqual({
      mode: 'tcx',
      ingress: previous.programs.ingress,
      egress: previous.programs.egress,
    });
    // clsact filters carry the new programs; the tcx links and their pins are gone
    expectOnly(next, 'clsact');
    expect(tcxPins()).toEqual([]);
  });

  it('back to tcx: adoption replaces the clsact filters an earlier loader left, without a gap', async () => {
    const previous = loader!;
    const next = await restartUnderFlood('auto');
    expect(next.before[0]).toEqual({
      mode: 'clsact',
      ingress: previous.programs.ingress,
      egress: previous.programs.egress,
    });
    expect(next.mode).toBe('tcx');
    expectOnly(next, 'tcx');
    expect(tcxPins()).toHaveLength(2 * ifindexes().length);
  });

  it('detach removes the links and their pins: the interfaces are then unfiltered', async () => {
    // c -> b TCP 7000 is denied by b's ingress while the programs run
    expect(await agents[2]!.tcp(ip(1, 4), 7000, 800)).toBe(false);
    const d = await startLoader(topo.nodeNs, pinDir, ifindexes(), 'auto', 'detach');
    expect(d.before.every((a) => a.mode === 'tcx')).toBe(true);
    expect(d.after).toEqual(ifindexes().map(() => ({ mode: null, ingress: null, egress: null })));
    expect(d.kernel).toEqual(
      ifindexes().map(() => ({
        tcxIngress: [],
        tcxEgress: [],
        clsactIngress: null,
        clsactEgress: null,
      })),
    );
    expect(tcxPins()).toEqual([]);
    // the loader that attached is still running: detaching did not depend on its fds
    expect(loader!.proc.exitCode).toBeNull();
    expect(await agents[2]!.tcp(ip(1, 4), 7000, 800)).toBe(true);
  });
});
