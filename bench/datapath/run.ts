/**
 * Datapath benchmark, one run, same veth topology (two pods routed through a
 * node namespace): no filter, iptables with N rules (stateless FORWARD chain,
 * the matching ACCEPT last), an nftables set with N elements, and Palisade
 * with N policy entries (plus N ipcache entries), for each N. Measures
 * 64-byte UDP packets/s (C sendmmsg sender, counted by a recvmmsg sink in the
 * receiving pod), TCP throughput (iperf3), TCP request/response latency
 * p50/p99 (C client and server) and rule load time; prints a table (stderr)
 * and JSON (stdout) with ratios against no-filter runs interleaved with it in
 * the same invocation.
 *
 * Run as root after a build:
 *   node dist/bench/datapath/run.js [--n 10,1000,10000,100000] [--seconds 1] [--repeat 3]
 *     [--ref-object OLD.bpf.o] [--configs iptables,nftables,palisade,palisade-ref]
 * --ref-object adds "palisade-ref" rows: the same tables and maps run by
 * another build of the programs, in rounds of its own within the same run.
 * --configs runs only the listed filters (the no-filter rounds always run).
 * Each metric is the median of --repeat runs; senders/clients run on CPU 0
 * (where the whole veth path runs, in their softirq), receivers on CPU 1.
 * Every rule lives in the namespaces this creates; all are removed at the end.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';

import { Datapath } from '../../enforcer/src/datapath/datapath.js';
import { AttachChild } from './attach.js';
import { ALLOW_COOKIE, iptablesRules, nftRules, palisadeTables } from './filters.js';
import { Palbench, RECEIVER_CPU, SENDER_CPU } from './palbench.js';
import { formatTable, type Measure, type Row } from './report.js';
import { PodTopology } from './topology.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

function intList(name: string, fallback: string, min: number, max: number): number[] {
  const raw = arg(name, fallback);
  const xs = raw.split(',').map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < min || x > max))
    throw new Error(`--${name} ${raw}: expected integers from ${min} to ${max}, comma-separated`);
  return xs;
}

const NS = intList('n', '10,1000,10000,100000', 2, 200_000);
const SECONDS = intList('seconds', '1', 1, 30)[0]!;
const REPEAT = intList('repeat', '3', 1, 9)[0]!;
const RR_COUNT = 20_000;
const REF_OBJECT = arg('ref-object', '');
if (REF_OBJECT && !existsSync(REF_OBJECT))
  throw new Error(`--ref-object ${REF_OBJECT}: no such file`);
const ALL_FILTERS = ['iptables', 'nftables', 'palisade', 'palisade-ref'] as const;
const FILTERS: ReadonlySet<string> = (() => {
  const raw = arg('configs', REF_OBJECT ? ALL_FILTERS.join(',') : 'iptables,nftables,palisade');
  const xs = raw.split(',');
  const bad = xs.filter((x) => !(ALL_FILTERS as readonly string[]).includes(x));
  if (bad.length > 0)
    throw new Error(
      `--configs ${raw}: unknown ${bad.join(', ')} (one of ${ALL_FILTERS.join(', ')})`,
    );
  if (xs.includes('palisade-ref') && !REF_OBJECT)
    throw new Error('--configs palisade-ref needs --ref-object');
  return new Set(xs);
})();

/** One metric, or null with the reason on stderr (a filter too slow for the time limit). */
async function metric<T>(name: string, f: () => Promise<T>): Promise<T | null> {
  try {
    return await f();
  } catch (e) {
    process.stderr.write(
      `[bench] ${name}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}\n`,
    );
    return null;
  }
}

async function measure(topo: PodTopology, tools: Palbench): Promise<Measure> {
  const [p0, p1] = [topo.pod(0), topo.pod(1)];
  const timeout = (SECONDS + 20) * 1000;
  const udp = await metric('udp', async () => (await tools.udpPps(p0, p1, SECONDS)).pps);
  const tcp = await metric('tcp', async () => {
    const j = JSON.parse(
      await topo.exec(
        p0.ns,
        'iperf3',
        ['-c', p1.ip4, '-A', `${SENDER_CPU},${RECEIVER_CPU}`, '-t', String(SECONDS), '-J'],
        timeout,
      ),
    ) as {
      end: { sum_received: { bits_per_second: number } };
    };
    return +(j.end.sum_received.bits_per_second / 1e9).toFixed(3);
  });
  const rr = await metric('rr', () => tools.rrLatency(p0, p1, RR_COUNT, SECONDS));
  return {
    udpPps: udp,
    tcpGbps: tcp,
    rrP50Us: rr ? +rr.p50.toFixed(1) : null,
    rrP99Us: rr ? +rr.p99.toFixed(1) : null,
  };
}

/** Per-metric median (single runs on a shared 2-core machine are noisy). */
function median(runs: readonly Measure[]): Measure {
  const med = (k: keyof Measure): number | null => {
    const xs = runs
      .map((r) => r[k])
      .filter((x): x is number => x !== null)
      .sort((a, b) => a - b);
    return xs.length === 0 ? null : (xs[Math.floor((xs.length - 1) / 2)] as number);
  };
  return {
    udpPps: med('udpPps'),
    tcpGbps: med('tcpGbps'),
    rrP50Us: med('rrP50Us'),
    rrP99Us: med('rrP99Us'),
  };
}

async function timed(f: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (network namespaces, BPF)');
  const work = mkdtempSync(join(tmpdir(), 'pal-bench-'));
  const pinDir = `/sys/fs/bpf/palisade-bench-${process.pid}`;
  const topo = await PodTopology.create('bn', 2);
  let child: AttachChild | undefined;
  let refChild: AttachChild | undefined;
  let dp: Datapath | undefined;
  let tools: Palbench | undefined;
  const rows: Row[] = [];
  try {
    const node = topo.nodeNs;
    const t = Palbench.build(work);
    tools = t;
    await t.startRrServer(topo.pod(1), 3600);
    topo.spawnIn(topo.pod(1).ns, 'iperf3', ['-s', '-p', '5201']);
    await new Promise((r) => setTimeout(r, 500));

    await measure(topo, t); // warm-up: first iperf3 runs are slower on a cold system
    const div = (a: number | null, b: number | null): number | null =>
      a === null || b === null || b === 0 ? null : +(a / b).toFixed(3);
    const ratio = (m: Measure, base: Measure): Record<keyof Measure, number | null> => ({
      udpPps: div(m.udpPps, base.udpPps),
      tcpGbps: div(m.tcpGbps, base.tcpGbps),
      rrP50Us: div(m.rrP50Us, base.rrP50Us),
      rrP99Us: div(m.rrP99Us, base.rrP99Us),
    });
    const baselines: Measure[] = [];
    /**
     * REPEAT rounds of (no filter, filter) back to back; the ratio is of the
     * medians, so background load on the shared machine hits both sides.
     */
    const paired = async (
      on: () => Promise<void>,
      off: () => Promise<void>,
    ): Promise<{
      m: Measure;
      base: Measure;
      pairs: Pick<Row, 'udpPairRatios' | 'udpPairRatioMedian'>;
    }> => {
      const ms: Measure[] = [];
      const bs: Measure[] = [];
      for (let i = 0; i < REPEAT; i++) {
        bs.push(await measure(topo, t));
        await on();
        ms.push(await measure(topo, t));
        await off();
      }
      baselines.push(...bs);
      const pr = ms
        .map((m, i) => div(m.udpPps, bs[i]!.udpPps))
        .filter((x): x is number => x !== null)
        .sort((a, b) => a - b);
      const pairs = {
        udpPairRatios: pr,
        udpPairRatioMedian: pr.length === 0 ? null : pr[Math.floor((pr.length - 1) / 2)]!,
      };
      return { m: median(ms), base: median(bs), pairs };
    };

    dp = Datapath.open({ pinDir, adopt: false, sizes: { ipcache: 262144, tableEntries: 131072 } });
    child = await AttachChild.start(
      node,
      pinDir,
      topo.pods.map((p) => p.ifindex),
    );
    if (FILTERS.has('palisade-ref'))
      refChild = await AttachChild.start(
        node,
        pinDir,
        topo.pods.map((p) => p.ifindex),
        REF_OBJECT,
      );

    for (const n of NS) {
      if (FILTERS.has('iptables')) {
        // iptables: n-1 rules that do not match, then the ACCEPT that does
        const ipt = join(work, `ipt-${n}`);
        writeFileSync(ipt, iptablesRules(n));
        let iptLoad = 0;
        const ipt2 = await paired(
          async () => {
            iptLoad = await timed(() => topo.exec(node, 'iptables-restore', [ipt], 600_000));
          },
          async () => void (await topo.exec(node, 'nft', ['flush', 'ruleset'])),
        );
        rows.push({
          config: 'iptables',
          n,
          loadMs: +iptLoad.toFixed(1),
          ...ipt2.m,
          ratio: ratio(ipt2.m, ipt2.base),
          ...ipt2.pairs,
        });
      }
      if (FILTERS.has('nftables')) {
        // nftables: one set lookup whatever n
        const nft = join(work, `nft-${n}`);
        writeFileSync(nft, nftRules(n));
        let nftLoad = 0;
        const nft2 = await paired(
          async () => {
            nftLoad = await timed(() => topo.exec(node, 'nft', ['-f', nft], 600_000));
          },
          async () => void (await topo.exec(node, 'nft', ['flush', 'ruleset'])),
        );
        rows.push({
          config: 'nftables',
          n,
          loadMs: +nftLoad.toFixed(1),
          ...nft2.m,
          ratio: ratio(nft2.m, nft2.base),
          ...nft2.pairs,
        });
      }
      // Palisade: n policy entries per enforced direction, n ipcache entries
      const tables = palisadeTables(n, topo.pods);
      const idx = new Map(topo.pods.map((p, i) => [`p${i}`, p.ifindex]));
      const palLoad = await timed(() => dp!.applyFull(tables, (id) => idx.get(id)));
      for (const [config, c] of [
        ['palisade', child],
        ['palisade-ref', refChild],
      ] as const) {
        if (!FILTERS.has(config) || !c) continue;
        const allowedBefore = dp.ruleCounter(ALLOW_COOKIE).packets;
        const pal2 = await paired(
          () => c.cmd('attach'),
          () => c.cmd('detach'),
        );
        // the programs decided the measured connections (cookie 1 = the allow
        // of the benchmark's peer), so this row measured the filter
        if (dp.ruleCounter(ALLOW_COOKIE).packets === allowedBefore)
          throw new Error(`${config} n=${n}: the programs saw no new connection`);
        rows.push({
          config,
          n,
          loadMs: +palLoad.toFixed(1),
          ...pal2.m,
          ratio: ratio(pal2.m, pal2.base),
          ...pal2.pairs,
        });
      }
      process.stderr.write(`[bench] n=${n} done\n`);
    }
    rows.unshift({ config: 'none', n: 0, loadMs: 0, ...median(baselines) });
  } finally {
    tools?.stop();
    child?.stop();
    refChild?.stop();
    dp?.close();
    Datapath.removePins(pinDir);
    await topo.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
  const find = (c: Row['config'], n: number): Row | undefined =>
    rows.find((r) => r.config === c && r.n === n);
  const maxN = Math.max(...NS);
  const at1k = NS.includes(1000) ? 1000 : Math.min(...NS);
  const pal = find('palisade', maxN);
  const ipt = find('iptables', at1k);
  const palAt = find('palisade', at1k);
  const div = (a: number | null | undefined, b: number | null | undefined): number | null =>
    a == null || b == null || b === 0 ? null : +(a / b).toFixed(3);
  // Palisade against iptables at the same N: each side relative to its own
  // interleaved no-filter rounds (robust to drift), and of the raw medians
  const withVsIptables = rows.map((r) =>
    r.config === 'palisade' || r.config === 'palisade-ref'
      ? {
          ...r,
          vsIptables: {
            udpPpsOfRatios: div(r.ratio?.udpPps, find('iptables', r.n)?.ratio?.udpPps),
            udpPps: div(r.udpPps, find('iptables', r.n)?.udpPps),
          },
        }
      : r,
  );
  process.stderr.write(formatTable(rows) + '\n');
  process.stdout.write(
    JSON.stringify(
      {
        kernel: release(),
        cpus: cpus().length,
        secondsPerTest: SECONDS,
        repeat: REPEAT,
        ...(REF_OBJECT ? { refObject: REF_OBJECT } : {}),
        iptables: execFileSync('iptables', ['-V'], { encoding: 'utf8' }).trim(),
        notes: [
          'udp: 64-byte datagrams from a C sendmmsg sender (batches of 64) on CPU 0 for the test time, counted by a recvmmsg sink in the receiving pod on CPU 1; pps = received / sending time',
          'tcp: iperf3, one stream, client CPU 0, server CPU 1; rr: 1-byte TCP round trips (C, TCP_NODELAY), up to 20000 within the test time',
          'iptables: stateless FORWARD chain, n-1 non-matching rules then the matching ACCEPT (every packet walks the chain); Debian 12 iptables = iptables-nft, so the rules run in nf_tables (see `iptables`)',
          'nftables: one set of n IPv4 elements looked up per packet',
          'palisade: tc programs on both host-side veths, tables with n entries for the enforced directions, n ipcache entries; conntrack passes established packets',
          'ratios: each configuration ran REPEAT rounds of (no filter, filter) back to back; ratio = median(filter) / median(its no-filter runs)',
          'udpPairRatios: per round, filter pps / the no-filter round just before it (sorted); udpPairRatioMedian = their median',
          'vsIptables.udpPpsOfRatios = palisade ratio / iptables ratio at the same n (each against its own baselines); vsIptables.udpPps = ratio of the raw medians',
          'null = did not complete within the time limit (see stderr); each value is the median of `repeat` runs',
        ],
        results: withVsIptables,
        targets: {
          [`palisadeUdpPpsVsNoFilterAtN${maxN}`]: pal?.ratio?.udpPps ?? null,
          [`palisadeUdpPpsVsNoFilterAtN${maxN}PairMedian`]: pal?.udpPairRatioMedian ?? null,
          [`palisadeUdpPpsVsIptablesAtN${at1k}`]: div(palAt?.ratio?.udpPps, ipt?.ratio?.udpPps),
          [`palisadeUdpPpsVsIptablesAtN${at1k}Raw`]: div(palAt?.udpPps, ipt?.udpPps),
          ...(REF_OBJECT
            ? {
                [`refUdpPpsVsNoFilterAtN${maxN}`]:
                  find('palisade-ref', maxN)?.ratio?.udpPps ?? null,
                [`refUdpPpsVsNoFilterAtN${maxN}PairMedian`]:
                  find('palisade-ref', maxN)?.udpPairRatioMedian ?? null,
                [`refUdpPpsVsIptablesAtN${at1k}`]: div(
                  find('palisade-ref', at1k)?.ratio?.udpPps,
                  ipt?.ratio?.udpPps,
                ),
              }
            : {}),
        },
      },
      null,
      2,
    ) + '\n',
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/datapath: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
