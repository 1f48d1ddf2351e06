/**
 * Where a 64-byte UDP packet's time goes, per filter: `perf record` on the
 * sender's CPU (the whole veth path, forwarding and the filters included,
 * runs there in the sender's softirq) while the C sender runs, then the
 * samples of the sender's context grouped by what they are (BPF programs,
 * BPF maps and helpers, tc hook, iptables, nftables, the rest). Costs are
 * per packet sent: samples / frequency / packets, so other jobs on the
 * machine do not inflate them (they only take samples of other commands).
 *
 * Run as root after a build:
 *   node dist/bench/datapath/profile.js [--n 1000,100000] [--seconds 3] [--repeat 3]
 *     [--ref-object OLD.bpf.o] [--configs none,iptables,nftables,palisade,palisade-ref]
 * Per N, REPEAT rounds of (no filter, iptables, nftables, Palisade); each
 * configuration's profile is the round with the median total, and
 * cpuRatio = no-filter ns per packet / this configuration's (the packets/s
 * ratio when the path has the CPU to itself).
 * --ref-object adds "palisade-ref": the same tables and maps run by another
 * build of the programs (e.g. the previous commit's), in the same rounds,
 * so a change is measured against its reference under the same load.
 * --configs runs only the listed configurations (none is always run).
 * Prints JSON (stdout) and a summary (stderr). Same topology and filters as
 * run.ts; everything it creates is removed at the end.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';

import { Datapath } from '../../enforcer/src/datapath/datapath.js';
import { AttachChild } from './attach.js';
import { iptablesRules, nftRules, palisadeTables } from './filters.js';
import { Palbench, SENDER_CPU } from './palbench.js';
import { PodTopology } from './topology.js';

const FREQ = 4999;
/**
 * The sender's samples (perf sometimes misses the comm events of the
 * workload's exec chain perf-exec -> ip -> palbench and names it by an
 * earlier link) and deferred softirq work on its CPU.
 */
const COMMS = 'palbench,perf-exec,ip,ksoftirqd/0';
/** A CPU cost per packet below this means perf lost the sender's comm: the run is repeated. */
const IMPLAUSIBLE_NS = 1000;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}
function ints(name: string, fallback: string, min: number, max: number): number[] {
  const raw = arg(name, fallback);
  const xs = raw.split(',').map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < min || x > max))
    throw new Error(`--${name} ${raw}: expected integers from ${min} to ${max}, comma-separated`);
  return xs;
}
const NS = ints('n', '1000,100000', 2, 200_000);
const SECONDS = ints('seconds', '3', 1, 30)[0]!;
const REPEAT = ints('repeat', '3', 1, 9)[0]!;
const REF_OBJECT = arg('ref-object', '');
if (REF_OBJECT && !existsSync(REF_OBJECT))
  throw new Error(`--ref-object ${REF_OBJECT}: no such file`);
const ALL_CONFIGS = ['none', 'iptables', 'nftables', 'palisade', 'palisade-ref'] as const;
type Config = (typeof ALL_CONFIGS)[number];
const CONFIGS: ReadonlySet<string> = (() => {
  const raw = arg(
    'configs',
    REF_OBJECT ? ALL_CONFIGS.join(',') : 'none,iptables,nftables,palisade',
  );
  const xs = raw.split(',');
  const bad = xs.filter((x) => !(ALL_CONFIGS as readonly string[]).includes(x));
  if (bad.length > 0)
    throw new Error(
      `--configs ${raw}: unknown ${bad.join(', ')} (one of ${ALL_CONFIGS.join(', ')})`,
    );
  if (xs.includes('palisade-ref') && !REF_OBJECT)
    throw new Error('--configs palisade-ref needs --ref-object');
  return new Set(['none', ...xs]);
})();

/** What a kernel symbol is part of (first match wins). */
const GROUPS: readonly [string, RegExp][] = [
  ['bpf programs', /^bpf_prog_/],
  ['bpf maps and helpers', /^(bpf_|htab_|__htab_|trie_|array_map|percpu_array|lookup_elem|__bpf_)/],
  ['tc hook', /^(tcf_|tc_run|tcx_|sch_handle_|cls_bpf|mini_qdisc|__tcf_)/],
  // Debian 12's iptables is iptables-nft: its rules run in nf_tables too
  ['netfilter (iptables-nft, nftables)', /^(nft_|__nft_|nf_|ipt_|ip_packet_match|xt_|iptable_)/],
  ['syscall entry and user space', /^(entry_SYSCALL|do_syscall|syscall_|__x64_sys|\[\.\])/],
];

interface Profile {
  readonly config: string;
  readonly n: number;
  readonly pps: number;
  readonly sent: number;
  /** ns per packet sent, by group; 'total' = all samples of the sender's context */
  readonly nsPerPacket: Record<string, number>;
  /** top symbols of the sender's context, % of its samples */
  readonly top: { sym: string; pct: number }[];
  /** the largest symbols of each group, % of the sender's samples */
  readonly groupTop: Record<string, { sym: string; pct: number }[]>;
  /** no-filter total / this total, medians of the same N's rounds */
  cpuRatio?: number;
  /** iptables total / Palisade total at the same N (Palisade rows) */
  vsIptables?: number;
  /**
   * ns per packet in the filter itself: netfilter for iptables/nftables;
   * for Palisade its programs + tc hook + maps and helpers above the
   * no-filter round's (other BPF on the host runs there too)
   */
  filterNs?: number;
  /** filterNs of every round (the same definition), for the median and spread */
  filterNsRounds?: number[];
  /** median of filterNsRounds: robust to one round hit by other jobs' cache pressure */
  filterNsMedian?: number;
}

/** perf report lines "  12.34%  comm  [k] symbol" of the commands doing the path's work. */
function readProfile(file: string): { sym: string; pct: number }[] {
  const text = execFileSync(
    'perf',
    [
      'report',
      '-i',
      file,
      '--stdio',
      '--percentage',
      'relative',
      '--sort',
      'comm,sym',
      '--comms',
      COMMS,
    ],
    {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      timeout: 120_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const out: { sym: string; pct: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)%\s+\S+\s+\[(.)\]\s+(.+?)\s*$/.exec(line);
    if (m) out.push({ sym: m[2] === 'k' ? m[3]! : '[.]', pct: Number(m[1]) });
  }
  return out;
}

function sampleCount(file: string): number {
  // the header of the same report: "# Samples: 14K of event ..." is rounded; count exactly
  const text = execFileSync('perf', ['script', '-i', file, '-F', 'comm', '--comms', COMMS], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    timeout: 120_000,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return text.split('\n').filter((l) => l.trim().length > 0).length;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (network namespaces, BPF, perf)');
  try {
    execFileSync('perf', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('perf not found (Debian package linux-perf)');
  }
  const work = mkdtempSync(join(tmpdir(), 'pal-prof-'));
  const pinDir = `/sys/fs/bpf/palisade-prof-${process.pid}`;
  const topo = await PodTopology.create('bp', 2);
  let tools: Palbench | undefined;
  let child: AttachChild | undefined;
  let refChild: AttachChild | undefined;
  let dp: Datapath | undefined;
  const profiles: Profile[] = [];
  try {
    const t = Palbench.build(work);
    tools = t;
    const [p0, p1] = [topo.pod(0), topo.pod(1)];
    dp = Datapath.open({ pinDir, adopt: false, sizes: { ipcache: 262144, tableEntries: 131072 } });
    child = await AttachChild.start(
      topo.nodeNs,
      pinDir,
      topo.pods.map((p) => p.ifindex),
    );
    if (CONFIGS.has('palisade-ref'))
      refChild = await AttachChild.start(
        topo.nodeNs,
        pinDir,
        topo.pods.map((p) => p.ifindex),
        REF_OBJECT,
      );
    const idx = new Map(topo.pods.map((p, i) => [`p${i}`, p.ifindex]));
    const run = async (config: string, n: number): Promise<Profile> => {
      for (let attempt = 0; attempt < 3; attempt++) {
        const p = await runOnce(config, n);
        if (p.nsPerPacket['total']! >= IMPLAUSIBLE_NS) return p;
        process.stderr.write(`[profile] ${config} n=${n}: sender's samples missing, again\n`);
      }
      throw new Error(`${config} n=${n}: perf did not attribute the sender's samples`);
    };
    const runOnce = async (config: string, n: number): Promise<Profile> => {
      const file = join(work, `perf-${config}-${n}.data`);
      const perf = [
        'perf',
        'record',
        '-q',
        '-o',
        file,
        '-F',
        String(FREQ),
        '-a',
        '-C',
        String(SENDER_CPU),
        '--',
      ];
      const r = await t.udpPps(p0, p1, SECONDS, perf);
      const syms = readProfile(file);
      const samples = sampleCount(file);
      const nsOf = (pct: number): number =>
        +(((pct / 100) * samples * 1e9) / FREQ / r.sent).toFixed(1);
      const groups: Record<string, number> = { total: nsOf(100) };
      const rest = { pct: 0 };
      const groupTop: Record<string, { sym: string; pct: number }[]> = {};
      for (const s of syms) {
        const g = GROUPS.find(([, re]) => re.test(s.sym))?.[0];
        if (g) {
          groups[g] = (groups[g] ?? 0) + s.pct;
          const list = (groupTop[g] ??= []);
          if (list.length < 4) list.push(s);
        } else rest.pct += s.pct;
      }
      const nsPerPacket: Record<string, number> = { total: groups['total']! };
      for (const [g] of GROUPS) nsPerPacket[g] = nsOf(groups[g] ?? 0);
      nsPerPacket['rest of the stack'] = nsOf(rest.pct);
      const top = syms.slice(0, 12).map((s) => ({ sym: s.sym, pct: s.pct }));
      process.stderr.write(
        `[profile] ${config} n=${n}: ${r.pps} pps, ${JSON.stringify(nsPerPacket)}\n`,
      );
      if (!process.env['KEEP_PERF']) rmSync(file, { force: true });
      return { config, n, pps: r.pps, sent: r.sent, nsPerPacket, top, groupTop };
    };
    const medianOf = (ps: Profile[]): Profile =>
      [...ps].sort((a, b) => a.nsPerPacket['total']! - b.nsPerPacket['total']!)[
        Math.floor((ps.length - 1) / 2)
      ]!;

    for (const n of NS) {
      const ipt = join(work, `ipt-${n}`);
      writeFileSync(ipt, iptablesRules(n));
      const nft = join(work, `nft-${n}`);
      writeFileSync(nft, nftRules(n));
      dp.applyFull(palisadeTables(n, topo.pods), (id) => idx.get(id));
      const rounds: Record<string, Profile[]> = {};
      for (const c of ALL_CONFIGS) if (CONFIGS.has(c)) rounds[c] = [];
      const round = async (c: Config, on: () => Promise<void>, off: () => Promise<void>) => {
        if (!CONFIGS.has(c)) return;
        await on();
        rounds[c]!.push(await run(c, n));
        await off();
      };
      const flush = async (): Promise<void> =>
        void (await topo.exec(topo.nodeNs, 'nft', ['flush', 'ruleset']));
      for (let i = 0; i < REPEAT; i++) {
        rounds['none']!.push(await run('none', n));
        await round(
          'iptables',
          async () => void (await topo.exec(topo.nodeNs, 'iptables-restore', [ipt], 600_000)),
          flush,
        );
        await round(
          'nftables',
          async () => void (await topo.exec(topo.nodeNs, 'nft', ['-f', nft], 600_000)),
          flush,
        );
        await round(
          'palisade',
          () => child!.cmd('attach'),
          () => child!.cmd('detach'),
        );
        await round(
          'palisade-ref',
          () => refChild!.cmd('attach'),
          () => refChild!.cmd('detach'),
        );
      }
      const none = medianOf(rounds['none']!);
      const ipt1 = rounds['iptables'] ? medianOf(rounds['iptables']) : undefined;
      const g = (p: Profile, k: string): number => p.nsPerPacket[k] ?? 0;
      /** ns in the filter: Palisade's programs, tc hook and maps/helpers above no filter's */
      const filterOf = (config: string, p: Profile): number =>
        config.startsWith('palisade')
          ? +(
              g(p, 'bpf programs') +
              g(p, 'tc hook') +
              g(p, 'bpf maps and helpers') -
              g(none, 'bpf maps and helpers')
            ).toFixed(1)
          : g(p, 'netfilter (iptables-nft, nftables)');
      for (const [config, ps] of Object.entries(rounds)) {
        const m = medianOf(ps);
        const total = m.nsPerPacket['total']!;
        m.cpuRatio = +(none.nsPerPacket['total']! / total).toFixed(3);
        m.filterNs = filterOf(config, m);
        m.filterNsRounds = ps.map((p) => filterOf(config, p));
        const sorted = [...m.filterNsRounds].sort((a, b) => a - b);
        m.filterNsMedian = sorted[Math.floor((sorted.length - 1) / 2)]!;
        if (config.startsWith('palisade') && ipt1)
          m.vsIptables = +(ipt1.nsPerPacket['total']! / total).toFixed(3);
        profiles.push(m);
      }
    }
  } finally {
    tools?.stop();
    child?.stop();
    refChild?.stop();
    dp?.close();
    Datapath.removePins(pinDir);
    await topo.cleanup();
    if (!process.env['KEEP_PERF']) rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(
    JSON.stringify(
      {
        kernel: release(),
        cpus: cpus().length,
        secondsPerProfile: SECONDS,
        repeat: REPEAT,
        perfFrequencyHz: FREQ,
        ...(REF_OBJECT ? { refObject: REF_OBJECT } : {}),
        iptables: execFileSync('iptables', ['-V'], { encoding: 'utf8' }).trim(),
        notes: [
          `perf record -a -C ${SENDER_CPU} -F ${FREQ} while the C sender runs there; samples of the sender (comm palbench, perf-exec or ip: perf misses some exec comm events) and ksoftirqd/0 only (these may also carry a little of other jobs' work)`,
          'nsPerPacket = samples of the group / frequency / packets sent (CPU time per packet, whatever else the machine runs)',
          'groups by kernel symbol: bpf programs = the JITed from_pod/to_pod; bpf maps and helpers = map lookups and helpers they call; tc hook = the clsact/tcx glue',
        ],
        profiles,
        summary: profiles.map((p) => ({
          config: p.config,
          n: p.n,
          nsPerPacket: p.nsPerPacket['total'],
          cpuRatio: p.cpuRatio,
          filterNs: p.filterNs,
          filterNsMedian: p.filterNsMedian,
          filterNsRounds: p.filterNsRounds,
          ...(p.vsIptables !== undefined ? { vsIptables: p.vsIptables } : {}),
        })),
      },
      null,
      2,
    ) + '\n',
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/datapath/profile: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
