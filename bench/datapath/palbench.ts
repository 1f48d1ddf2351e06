/**
 * The bench's traffic tools (palbench.c, compiled here with `cc -O2`): a
 * sendmmsg UDP sender and a recvmmsg sink, and a C request/response pair.
 * They cost far less per packet than node or iperf3's one-syscall-per-packet
 * loop, so the numbers are the datapath's, not the sender's. Packets are
 * counted at the receiver. Every process is bounded in time by its own
 * arguments and, in addition, killed by pid if it outlives its limit.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import type { Pod } from './topology.js';

/** CPU of the sender / client (the whole veth path runs in its softirq) and of the receiver. */
export const SENDER_CPU = 0;
export const RECEIVER_CPU = 1;
export const UDP_PORT = 9000;
export const RR_PORT = 7100;

function source(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // run from bench/datapath (tsx hooks) or from dist/bench/datapath
  for (const c of [
    join(here, 'palbench.c'),
    join(here, '..', '..', '..', 'bench', 'datapath', 'palbench.c'),
  ])
    if (existsSync(c)) return c;
  throw new Error(`palbench.c not found next to ${here} or in the source tree`);
}

/** Compiles palbench.c into workDir; returns the binary's path. */
export function buildPalbench(workDir: string): string {
  const out = join(workDir, 'palbench');
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', out, source()], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 60_000,
    });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString() ?? String(e);
    throw new Error(`bench/datapath: cannot compile palbench.c (needs cc): ${err.trim()}`);
  }
  return out;
}

interface Running {
  /** resolves on the tool's {"ready":true} line (or when the process ends) */
  readonly ready: Promise<void>;
  /** the last JSON line, when the process exits */
  readonly result: Promise<Record<string, number>>;
}

/**
 * The compiled tools and every process started from them (so that stop()
 * can end the ones still running, by pid).
 */
export class Palbench {
  private readonly procs = new Set<ChildProcess>();

  private constructor(readonly bin: string) {}

  static build(workDir: string): Palbench {
    return new Palbench(buildPalbench(workDir));
  }

  /** Starts a palbench mode in a namespace; killed by pid after limitMs. */
  private start(
    ns: string,
    args: string[],
    limitMs: number,
    prefix: readonly string[] = [],
  ): Running {
    const argv = [...prefix, 'ip', 'netns', 'exec', ns, this.bin, ...args];
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.add(proc);
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines: string[] = [];
    let onReady: (() => void) | undefined;
    const ready = new Promise<void>((r) => (onReady = r));
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      if (l.includes('"ready"')) onReady?.();
      else lines.push(l);
    });
    const timer = setTimeout(() => kill(proc), limitMs);
    const result = new Promise<Record<string, number>>((resolve, reject) => {
      proc.on('close', (code, signal) => {
        clearTimeout(timer);
        this.procs.delete(proc);
        onReady?.();
        const last = lines.at(-1);
        if (code !== 0 || last === undefined)
          return reject(
            new Error(
              `palbench ${args[0]}: exit ${code ?? signal}${stderr ? `: ${stderr.trim()}` : ''}`,
            ),
          );
        resolve(JSON.parse(last) as Record<string, number>);
      });
    });
    return { ready, result };
  }

  /** 64-byte UDP datagrams from one pod to another for `seconds`: received per second of sending. */
  async udpPps(
    from: Pod,
    to: Pod,
    seconds: number,
    /** a command the sender runs under (e.g. `perf record … --`) */
    senderPrefix: readonly string[] = [],
  ): Promise<{ pps: number; sent: number; received: number }> {
    const maxS = seconds + 3;
    const sink = this.start(
      to.ns,
      ['udp-sink', String(UDP_PORT), String(maxS), '300', String(RECEIVER_CPU)],
      (maxS + 5) * 1000,
    );
    await sink.ready;
    const send = this.start(
      from.ns,
      // count bound: 20 M datagrams per second of test, far above this path
      [
        'udp-send',
        to.ip4,
        String(UDP_PORT),
        String(seconds),
        String(20_000_000 * seconds),
        String(SENDER_CPU),
      ],
      (seconds + 5) * 1000,
      senderPrefix,
    );
    const s = await send.result;
    const r = await sink.result;
    const sent = s['sent'] ?? 0;
    const received = r['received'] ?? 0;
    if (received === 0) throw new Error(`no datagram arrived (${sent} sent)`);
    return { pps: Math.round(received / (s['seconds'] ?? seconds)), sent, received };
  }

  /** Starts the request/response server in a pod for up to maxSeconds. */
  async startRrServer(pod: Pod, maxSeconds: number): Promise<void> {
    const srv = this.start(
      pod.ns,
      ['rr-server', String(RR_PORT), String(maxSeconds), String(RECEIVER_CPU)],
      (maxSeconds + 5) * 1000,
    );
    srv.result.catch(() => undefined);
    await srv.ready;
  }

  /** 1-byte TCP round trips, up to `count` or `seconds`: latency percentiles in µs. */
  async rrLatency(
    from: Pod,
    to: Pod,
    count: number,
    seconds: number,
  ): Promise<{ n: number; p50: number; p99: number }> {
    const c = this.start(
      from.ns,
      ['rr-client', to.ip4, String(RR_PORT), String(count), String(seconds), String(SENDER_CPU)],
      (seconds + 10) * 1000,
    );
    const r = await c.result;
    const n = r['n'] ?? 0;
    if (n === 0) throw new Error('no request/response round trip completed');
    return { n, p50: r['p50_us'] ?? NaN, p99: r['p99_us'] ?? NaN };
  }

  /** Kills (by pid) every tool process still running. */
  stop(): void {
    for (const p of this.procs) kill(p);
    this.procs.clear();
  }
}

function kill(p: ChildProcess): void {
  if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
