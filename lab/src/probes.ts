/**
 * Real traffic between the lab's pods: for each source pod one short-lived
 * probe process inside its namespace (bin/probe.ts) connects to every target
 * (TCP: connect + the listener's greeting; UDP: an echo). A few sources run
 * at once, each with a bounded number of probes in flight; every probe and
 * every process has a timeout.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PlannedPod } from './plan.js';

export interface ProbeTarget {
  readonly from: string;
  readonly to: string;
  readonly protocol: 'TCP' | 'UDP';
  readonly port: number;
}

export interface ProbeOutcome extends ProbeTarget {
  readonly reached: boolean;
  readonly detail: string;
}

export interface ProbeSettings {
  readonly runId: string;
  readonly timeoutMs: number;
  /** probes in flight per source pod */
  readonly parallel: number;
  /** source pods probing at once */
  readonly sources: number;
}

export const DEFAULT_PROBE_SETTINGS: Omit<ProbeSettings, 'runId'> = {
  timeoutMs: 1500,
  parallel: 24,
  sources: 4,
};

/** The plaintext every probe carries (the tunnel test looks for it on the underlay). */
export const PROBE_MARKER = 'PALISADE-LAB-PROBE';

const probeBin = fileURLToPath(new URL('./bin/probe.js', import.meta.url));

function runSource(
  pod: PlannedPod,
  targets: readonly ProbeTarget[],
  ipOf: ReadonlyMap<string, string>,
  s: ProbeSettings,
): Promise<ProbeOutcome[]> {
  const spec = targets.map((t) => ({
    ip: ipOf.get(t.to),
    protocol: t.protocol,
    port: t.port,
    payload: `${PROBE_MARKER} ${t.from} -> ${t.to} ${t.protocol}/${t.port}`,
  }));
  const budget = Math.ceil(targets.length / s.parallel) * (s.timeoutMs + 200) + 10_000;
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      [
        'netns',
        'exec',
        pod.netns,
        process.execPath,
        probeBin,
        '--run',
        s.runId,
        '--timeout',
        String(s.timeoutMs),
        '--parallel',
        String(s.parallel),
        '--targets',
        JSON.stringify(spec),
      ],
      { timeout: budget, maxBuffer: 8 << 20 },
      (err, stdout, stderr) => {
        if (err)
          return reject(
            new Error(`probes from ${pod.id}: ${String(stderr).trim() || err.message}`),
          );
        const byIndex = new Map<number, { reached: boolean; detail: string }>();
        for (const line of String(stdout).split('\n')) {
          if (!line.trim()) continue;
          const r = JSON.parse(line) as { i: number; reached: boolean; detail: string };
          byIndex.set(r.i, r);
        }
        resolve(
          targets.map((t, i) => ({
            ...t,
            reached: byIndex.get(i)?.reached ?? false,
            detail: byIndex.get(i)?.detail ?? 'no result',
          })),
        );
      },
    );
  });
}

/** Runs every target (grouped by source pod); outcomes in the order of `targets`. */
export async function probeAll(
  pods: readonly PlannedPod[],
  targets: readonly ProbeTarget[],
  s: ProbeSettings,
): Promise<ProbeOutcome[]> {
  const podById = new Map(pods.map((p) => [p.id, p]));
  const ipOf = new Map(pods.map((p) => [p.id, p.ip]));
  const bySource = new Map<string, ProbeTarget[]>();
  for (const t of targets) {
    if (!podById.has(t.from) || !ipOf.has(t.to))
      throw new Error(`probe ${t.from} -> ${t.to}: not a lab pod`);
    const l = bySource.get(t.from) ?? [];
    l.push(t);
    bySource.set(t.from, l);
  }
  const results = new Map<ProbeTarget, ProbeOutcome>();
  const queue = [...bySource];
  const worker = async (): Promise<void> => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      const [from, ts] = item;
      const out = await runSource(podById.get(from) as PlannedPod, ts, ipOf, s);
      ts.forEach((t, i) => results.set(t, out[i] as ProbeOutcome));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(s.sources, queue.length)) }, worker));
  return targets.map((t) => results.get(t) as ProbeOutcome);
}
