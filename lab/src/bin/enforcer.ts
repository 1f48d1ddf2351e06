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
import { Datapath } from '../../../enforcer/src/datapath/datapath.js';
import {
  FlowPipeline,
  NdjsonFileSink,
  attributionFromWorld,
  monotonicToWallOffsetNs,
  toFlowRecord,
  type FlowContext,
} from '../../../enforcer/src/flows/index.js';
import { Reconciler } from '../../../enforcer/src/reconcile/index.js';
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
const podIfs = JSON.parse(values.pods ?? '{}') as Record<
  string,
  { iface: string; ifindex: number }
>;
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
let revision = 0;
let applied = 0;
let digest = '';
let appliedAtMs = 0;
const counts = { denied: 0, allowed: 0, audit: 0, revoked: 0 };

dp.onEvent((ev) => {
  if (ev.type === 'DENY') counts.denied++;
  else if (ev.type === 'NEW_ALLOWED') counts.allowed++;
  else if (ev.type === 'AUDIT') counts.audit++;
  else counts.revoked++;
  if (!ctx) return;
  if (ev.suppressedBefore > 0)
    pipeline.reportLost('datapath_rate_limit', ev.suppressedBefore, 'rate_limited');
  pipeline.push(toFlowRecord(ev, ctx));
});

// The enforcer's reconcile loop (enforcer/src/reconcile): debounce, incremental
// compile for this cluster, applyFull; a bad world keeps the previous policy.
const reconciler = new Reconciler({
  nodeName: `${cluster}/${node}`,
  cluster,
  applier: dp,
  ifindexOf: (id) => podIfindex.get(id),
  metrics,
  debounceMs: 100,
  onApplied: (compiled, world) => {
    // endpoints are in the map before the programs see packets
    for (const i of podIfindex.values()) dp.attach(i);
    ctx = attributionFromWorld(world, compiled.encoded.cookies, {
      nodeName: `${cluster}/${node}`,
      cluster,
      clockOffsetNs,
    });
    revision = dp.revision();
    applied++;
    appliedAtMs = Date.now();
    writeStatus();
  },
});

function onSnapshot(snap: SourceSnapshot): void {
  digest = snap.digest;
  reconciler.submit(snap);
}

function writeStatus(): void {
  const drops = Object.fromEntries(
    Object.entries(dp.dropStats()).map(([k, v]) => [k, Number(v.packets)]),
  );
  const st = {
    node,
    cluster,
    pid: process.pid,
    revision,
    applied,
    digest,
    appliedAtMs,
    lastError: reconciler.status().lastError,
    policies: reconciler.status().policies,
    attached: [...podIfindex].map(([id, i]) => ({
      pod: id,
      iface: podIfs[id]?.iface,
      ifindex: i,
      attached: dp.isAttached(i),
    })),
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

const source = new DirectorySource({
  dir: values.world as string,
  onSnapshot,
  debounceMs: 100,
  rescanMs: 2000,
});
await source.start();
const timer = setInterval(() => {
  dp.drainEvents();
  writeStatus();
  void writeMetrics();
}, 500);

async function stop(): Promise<void> {
  clearInterval(timer);
  source.stop();
  reconciler.stop();
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
