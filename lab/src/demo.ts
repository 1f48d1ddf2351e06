/**
 * `palisade lab demo`: real traffic for every ordered pair of lab pods on
 * every port of the lab world, compared with the reference evaluator's
 * prediction (what `palisade matrix -f <lab world>` prints); then attributed
 * deny flow records, the enforcers' counters, the tunnel status, and one
 * policy change applied live (the enforcers pick it up from the watched world
 * directory), with the affected pairs probed again. The change is reverted
 * at the end, so the lab is left as `up` made it.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  evaluateMatrix,
  loadWorldFromTexts,
  prepareWorld,
  readInputs,
  type ProbeVerdict,
} from '../../policy-compiler/src/index.js';
import {
  isFlowRecord,
  type AnyFlowRecord,
  type FlowRecord,
} from '../../enforcer/src/flows/record.js';
import { runPaths, type RunPaths } from './paths.js';
import type { LabOptions, LabPlan, PlannedPod } from './plan.js';
import {
  DEFAULT_PROBE_SETTINGS,
  probeAll,
  type ProbeOutcome,
  type ProbeSettings,
  type ProbeTarget,
} from './probes.js';
import { labStatus, type EnforcerView, type GatewayView } from './status.js';
import { labPlan, upLab, type LabContext } from './up.js';
import { labPorts, readExampleWorld } from './world.js';

export type Verdict = 'Allow' | 'Deny';

export interface ComparedProbe extends ProbeTarget {
  readonly predicted: Verdict;
  readonly observed: Verdict;
  readonly detail: string;
}

export interface DemoReport {
  readonly runId: string;
  readonly options: LabOptions;
  readonly world: string;
  readonly ports: string[];
  readonly probes: ComparedProbe[];
  readonly mismatches: ComparedProbe[];
  readonly denyFlows: FlowRecord[];
  readonly enforcers: EnforcerView[];
  /** palisade_* counters summed over the nodes' metrics (name{labels} -> value) */
  readonly metrics: Record<string, number>;
  readonly tunnel: GatewayView[];
  readonly change: {
    readonly file: string;
    readonly description: string;
    readonly probes: (ComparedProbe & { readonly before: Verdict })[];
    readonly mismatches: ComparedProbe[];
  };
  readonly ok: boolean;
}

/** The live change: west/shop's storefront takes HTTP from the analytics team. */
export const CHANGE_FILE = 'policies/zz-lab-demo-change.yaml';
export const CHANGE_DESCRIPTION =
  'NetworkPolicy west/shop/web-from-analytics: web pods accept tcp/8080 from namespaces labelled team=data (and, now isolated by a NetworkPolicy, nothing else)';
const CHANGE_YAML = `# Applied live by \`palisade lab demo\`, then removed.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-from-analytics
  namespace: shop
  annotations:
    palisade.dev/cluster: west
spec:
  podSelector:
    matchLabels:
      app: web
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector:
            matchLabels:
              team: data
      ports:
        - port: http
`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const key = (p: ProbeTarget): string => `${p.from} ${p.to} ${p.protocol}/${p.port}`;

/** The reference prediction for every pod pair × lab port of the world in `dir`. */
export async function predict(
  dir: string,
  plan: LabPlan,
  ports: readonly { protocol: 'TCP' | 'UDP'; port: number }[],
): Promise<Map<string, Verdict>> {
  const read = await readInputs([dir]);
  const loaded = loadWorldFromTexts(read.inputs);
  const errors = [...read.diagnostics, ...loaded.diagnostics].filter((d) => d.severity === 'error');
  if (errors.length > 0)
    throw new Error(`lab world ${dir}: ${errors.length} error(s): ${errors[0]?.message ?? ''}`);
  const pods = new Set(plan.clusters.flatMap((c) => c.pods.map((p) => p.id)));
  const out = new Map<string, Verdict>();
  for (const v of evaluateMatrix(prepareWorld(loaded.world), {
    ports,
    externals: [],
  }) as ProbeVerdict[]) {
    if (!pods.has(v.probe.from) || !pods.has(v.probe.to)) continue;
    out.set(
      key({
        from: v.probe.from,
        to: v.probe.to,
        protocol: v.probe.protocol as 'TCP' | 'UDP',
        port: v.probe.port,
      }),
      v.verdict,
    );
  }
  return out;
}

function targetsOf(predicted: ReadonlyMap<string, Verdict>): ProbeTarget[] {
  return [...predicted.keys()].map((k) => {
    const [from, to, pp] = k.split(' ') as [string, string, string];
    const [protocol, port] = pp.split('/') as ['TCP' | 'UDP', string];
    return { from, to, protocol, port: Number(port) };
  });
}

/** Probes, then re-probes (longer timeout) whatever disagrees, so a lost first packet is not a finding. */
async function observe(
  pods: readonly PlannedPod[],
  targets: readonly ProbeTarget[],
  predicted: ReadonlyMap<string, Verdict>,
  s: ProbeSettings,
): Promise<ComparedProbe[]> {
  const first = await probeAll(pods, targets, s);
  const compare = (o: ProbeOutcome): ComparedProbe => ({
    ...o,
    predicted: predicted.get(key(o)) ?? 'Deny',
    observed: o.reached ? 'Allow' : 'Deny',
    detail: o.detail,
  });
  const out = first.map(compare);
  const again = out.filter((c) => c.observed !== c.predicted);
  if (again.length > 0) {
    const retry = await probeAll(pods, again, { ...s, timeoutMs: s.timeoutMs * 2, parallel: 8 });
    const byKey = new Map(retry.map((r) => [key(r), compare(r)]));
    return out.map((c) => byKey.get(key(c)) ?? c);
  }
  return out;
}

function readFlows(paths: RunPaths, plan: LabPlan): FlowRecord[] {
  const out: FlowRecord[] = [];
  for (const c of plan.clusters) {
    for (const n of c.nodes) {
      const f = join(paths.nodeDir(n.name), 'flows.ndjson');
      if (!existsSync(f)) continue;
      for (const line of readFileSync(f, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          const r = JSON.parse(line) as AnyFlowRecord;
          if (isFlowRecord(r)) out.push(r);
        } catch {
          // a line being written
        }
      }
    }
  }
  return out;
}

/** A few deny records with different deciding policies. */
function pickDenies(flows: readonly FlowRecord[], n: number): FlowRecord[] {
  const seen = new Set<string>();
  const out: FlowRecord[] = [];
  for (const r of flows) {
    if (r.flow.verdict !== 'DROPPED') continue;
    const f = r.flow as unknown as Record<string, unknown>;
    const by = JSON.stringify(f['egress_denied_by'] ?? f['ingress_denied_by'] ?? null);
    if (seen.has(by)) continue;
    seen.add(by);
    out.push(r);
    if (out.length >= n) break;
  }
  return out;
}

const SUMMARY_METRICS = [
  'palisade_policy_verdicts_total',
  'palisade_drops_total',
  'palisade_flow_records_total',
  'palisade_flow_records_lost_total',
];

/** The enforcers' Prometheus counters of interest, summed over nodes. */
export function metricsSummary(paths: RunPaths, plan: LabPlan): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of plan.clusters) {
    for (const n of c.nodes) {
      const f = join(paths.nodeDir(n.name), 'metrics.prom');
      if (!existsSync(f)) continue;
      for (const line of readFileSync(f, 'utf8').split('\n')) {
        const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
        if (!m || !SUMMARY_METRICS.includes(m[1] as string)) continue;
        const k = `${m[1]}${m[2] ?? ''}`;
        out[k] = (out[k] ?? 0) + Number(m[3]);
      }
    }
  }
  return Object.fromEntries(
    Object.entries(out)
      .filter(([, v]) => v > 0)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
}

async function waitForEnforcers(
  labDir: string,
  before: ReadonlyMap<string, number>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const st = await labStatus(labDir);
    if (
      st.enforcers.length === before.size &&
      st.enforcers.every((e) => e.applied > (before.get(e.node) ?? 0) && e.lastError === null)
    )
      return;
    await sleep(100);
  }
  throw new Error(`enforcers did not apply the changed world within ${timeoutMs / 1000} s`);
}

export async function runDemo(
  ctx: LabContext,
  options: LabOptions,
  settings: Partial<Omit<ProbeSettings, 'runId'>> = {},
): Promise<DemoReport> {
  const { state } = await upLab(ctx, options);
  const plan = labPlan(state.options);
  const paths = runPaths(ctx.labDir, state.runId);
  const s: ProbeSettings = { ...DEFAULT_PROBE_SETTINGS, ...settings, runId: state.runId };
  const pods = plan.clusters.flatMap((c) => c.pods);
  const ports = labPorts(plan, readExampleWorld());
  // a change left by an interrupted demo goes first
  rmSync(join(paths.world, CHANGE_FILE), { force: true });

  const predicted = await predict(paths.world, plan, ports);
  const targets = targetsOf(predicted);
  ctx.progress(
    `probing ${targets.length} pod pairs × ports with real traffic (${s.sources} sources at once, ${s.parallel} probes each, ${s.timeoutMs} ms timeout)`,
  );
  const t0 = Date.now();
  const probes = await observe(pods, targets, predicted, s);
  ctx.progress(`  done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const mismatches = probes.filter((p) => p.observed !== p.predicted);

  // flows and counters of the traffic just sent (the enforcers flush every 500 ms)
  await sleep(1200);
  const denyFlows = pickDenies(readFlows(paths, plan), 5);
  const st = await labStatus(ctx.labDir);

  // one policy change, live
  ctx.progress(`live change: ${CHANGE_DESCRIPTION}`);
  const appliedBefore = new Map(st.enforcers.map((e) => [e.node, e.applied]));
  const changedDir = paths.world;
  writeFileSync(join(changedDir, CHANGE_FILE), CHANGE_YAML);
  let changeProbes: (ComparedProbe & { before: Verdict })[] = [];
  try {
    const after = await predict(changedDir, plan, ports);
    const affected = targetsOf(after).filter((t) => after.get(key(t)) !== predicted.get(key(t)));
    await waitForEnforcers(ctx.labDir, appliedBefore, 20_000);
    const observed = affected.length > 0 ? await observe(pods, affected, after, s) : [];
    changeProbes = observed.map((o) => ({ ...o, before: predicted.get(key(o)) ?? 'Deny' }));
  } finally {
    // revert: the lab stays as `up` made it
    const mid = await labStatus(ctx.labDir);
    rmSync(join(changedDir, CHANGE_FILE), { force: true });
    await waitForEnforcers(
      ctx.labDir,
      new Map(mid.enforcers.map((e) => [e.node, e.applied])),
      20_000,
    );
  }
  const changeMismatches = changeProbes.filter((p) => p.observed !== p.predicted);
  const final = await labStatus(ctx.labDir);
  return {
    runId: state.runId,
    options: state.options,
    world: paths.world,
    ports: ports.map((p) => `${p.protocol}/${p.port}`),
    probes,
    mismatches,
    denyFlows,
    enforcers: final.enforcers,
    metrics: metricsSummary(paths, plan),
    tunnel: final.gateways,
    change: {
      file: CHANGE_FILE,
      description: CHANGE_DESCRIPTION,
      probes: changeProbes,
      mismatches: changeMismatches,
    },
    ok: mismatches.length === 0 && changeMismatches.length === 0,
  };
}
