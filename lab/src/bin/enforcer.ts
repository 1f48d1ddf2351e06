/**
 * One lab node's enforcer (runs inside the node's network namespace, where
 * its pods' host-side veths are): watches the lab world directory, compiles
 * it for this node's cluster, syncs the tables into the BPF maps pinned under
 * its own bpffs directory, attaches the real programs to the pods' veths, and
 * turns datapath events into attributed flow records (NDJSON). It writes
 * status.json and metrics.prom into its directory for `lab status|demo`.
 *   enforcer --run <id> --node <name> --cluster <name> --world <dir> --pin <dir> --dir <dir> --pods '{"<pod id>":{"iface":..,"ifindex":..}}'
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compile, type Allocation } from '../../../policy-compiler/src/compile/compile.js';
import { loadWorldFromTexts, type World } from '../../../policy-compiler/src/index.js';
import { Datapath } from '../../../enforcer/src/datapath/datapath.js';
import {
  FlowPipeline,
  NdjsonFileSink,
  attributionFromWorld,
  monotonicToWallOffsetNs,
  toFlowRecord,
  type FlowContext,
} from '../../../enforcer/src/flows/index.js';
import { AgentMetrics } from '../../../enforcer/src/metrics/metrics.js';
import { DirectorySource, type SourceSnapshot } from '../../../enforcer/src/sources/index.js';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    node: { type: 'string' },
    cluster: { type: 'string' },
    world: { type: 'string' },
    pin: { type: 'string' },
    dir: { type: 'string' },
    pods: { type: 'string' },
  },
});
const node = values.node as string;
const cluster = values.cluster as string;
const dir = values.dir as string;
// pod id -> {iface, ifindex} of its host-side veth in this namespace (we run
// under nsenter --net, so /sys is the root namespace's: the lab passes ifindexes)
const podIfs = JSON.parse(values.pods ?? '{}') as Record<string, { iface: string; ifindex: number }>;
const podIfindex = new Map(Object.entries(podIfs).map(([id, p]) => [id, p.ifindex]));

const metrics = new AgentMetrics({ processMetrics: false });
const dp = Datapath.open({ pinDir: values.pin as string, denyEventsPerSec: 1000 });
const pipeline = new FlowPipeline({
  sinks: [new NdjsonFileSink(join(dir, 'flows.ndjson'), { maxBytes: 16 << 20, maxFiles: 2 })],
  nodeName: `${cluster}/${node}`,
  metrics,
  lostReportIntervalMs: 5000,
});
const clockOffsetNs = monotonicToWallOffsetNs();

let ctx: FlowContext | null = null;
let allocation: Allocation | undefined;
let revision = 0;
let applied = 0;
let digest = '';
let lastError: string | null = null;
let appliedAtMs = 0;
const counts = { denied: 0, allowed: 0, audit: 0, revoked: 0 };

dp.onEvent((ev) => {
  if (ev.type === 'DENY') counts.denied++;
  else if (ev.type === 'NEW_ALLOWED') counts.allowed++;
  else if (ev.type === 'AUDIT') counts.audit++;
  else counts.revoked++;
  if (!ctx) return;
  if (ev.suppressedBefore > 0) pipeline.reportLost('datapath_rate_limit', ev.suppressedBefore, 'rate_limited');
  pipeline.push(toFlowRecord(ev, ctx));
});

function apply(snap: SourceSnapshot): void {
  const loaded = loadWorldFromTexts(snap.inputs.map((i) => ({ file: i.file, text: i.text })));
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    lastError = `world has ${errors.length} error(s); the previous policy stays enforced: ${errors[0]?.message ?? ''}`;
    return;
  }
  const world: World = loaded.world;
  const t0 = process.hrtime.bigint();
  const result = compile(world, { localCluster: cluster, ...(allocation ? { previous: allocation } : {}) });
  metrics.observeCompile(Number(process.hrtime.bigint() - t0) / 1e9);
  if (!result.ok) {
    lastError = `compile: ${result.error.message}`;
    return;
  }
  const c = result.compiled;
  const t1 = process.hrtime.bigint();
  try {
    const r = dp.applyFull(c.encoded, (id) => podIfindex.get(id));
    revision = r.revision;
    for (const i of podIfindex.values()) dp.attach(i);
    metrics.observeSync(Number(process.hrtime.bigint() - t1) / 1e9);
    allocation = c.allocation;
    ctx = attributionFromWorld(world, c.encoded.cookies, { nodeName: `${cluster}/${node}`, cluster, clockOffsetNs });
    metrics.setIdentities(c.stats.identities);
    metrics.setEndpoints(podIfindex.size);
    metrics.setRealized({ enforced: 1, pending: 0, error: 0 });
    applied++;
    digest = snap.digest;
    appliedAtMs = Date.now();
    lastError = null;
  } catch (e) {
    lastError = `sync: ${(e as Error).message}`;
    metrics.setRealized({ enforced: 0, pending: 0, error: 1 });
  }
  writeStatus();
}

function writeStatus(): void {
  const drops = Object.fromEntries(Object.entries(dp.dropStats()).map(([k, v]) => [k, Number(v.packets)]));
  const st = {
    node,
    cluster,
    pid: process.pid,
    revision,
    applied,
    digest,
    appliedAtMs,
    lastError,
    attached: [...podIfindex].map(([id, i]) => ({ pod: id, iface: podIfs[id]?.iface, ifindex: i, attached: dp.isAttached(i) })),
    events: counts,
    drops,
    flows: pipeline.stats,
    observedAtMs: Date.now(),
  };
  writeFileSync(join(dir, 'status.json.tmp'), JSON.stringify(st, null, 2));
  renameSync(join(dir, 'status.json.tmp'), join(dir, 'status.json'));
}

async function writeMetrics(): Promise<void> {
  writeFileSync(join(dir, 'metrics.prom.tmp'), await metrics.text());
  renameSync(join(dir, 'metrics.prom.tmp'), join(dir, 'metrics.prom'));
}

const source = new DirectorySource({ dir: values.world as string, onSnapshot: apply, debounceMs: 100, rescanMs: 2000 });
await source.start();
const timer = setInterval(() => {
  dp.drainEvents();
  writeStatus();
  void writeMetrics();
}, 500);

async function stop(): Promise<void> {
  clearInterval(timer);
  source.stop();
  for (const i of podIfindex.values()) {
    try {
      dp.detach(i);
    } catch {
      // interface already gone
    }
  }
  await pipeline.close().catch(() => undefined);
  dp.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
