/**
 * The agent's Prometheus metrics (FORMATS.md "Metrics"): own Registry,
 * `palisade_` prefix, base units, label values from closed sets only, so
 * cardinality is bounded whatever the traffic (no pod, IP or identity labels).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type MetricDirection = 'ingress' | 'egress';
export type MetricAction = 'allow' | 'deny' | 'audit';
export type MetricTier = 'Admin' | 'NetworkPolicy' | 'Baseline' | 'Default';
export type RealizedState = 'enforced' | 'pending' | 'error';
export type LossReason =
  'queue_full' | 'sink_error' | 'sampled' | 'ringbuf_full' | 'rate_limited' | 'decode_error';

const DIRECTIONS: readonly MetricDirection[] = ['ingress', 'egress'];
const ACTIONS: readonly MetricAction[] = ['allow', 'deny', 'audit'];
const TIERS: readonly MetricTier[] = ['Admin', 'NetworkPolicy', 'Baseline', 'Default'];
const STATES: readonly RealizedState[] = ['enforced', 'pending', 'error'];
const LOSS: readonly LossReason[] = [
  'queue_full',
  'sink_error',
  'sampled',
  'ringbuf_full',
  'rate_limited',
];
/** enum pal_drop_reason names; anything else is counted as OTHER. */
const DROP_REASONS = [
  'POLICY_DENIED',
  'POLICY_DENY',
  'NO_ENDPOINT_POLICY',
  'UNENCRYPTED',
  'PARSE',
  'FRAG_UNKNOWN',
  'REVOKED',
  'OTHER',
] as const;
const SINKS = ['ndjson', 'ocsf', 'stdout', 'memory', 'other'] as const;
export type MapName =
  'ipcache' | 'endpoints' | 'policy_tables' | 'policy_entries' | 'conntrack' | 'cookies';
export type SinkKind = (typeof SINKS)[number];

function oneOf<T extends string>(allowed: readonly T[], v: string, fallback: T): T {
  return (allowed as readonly string[]).includes(v) ? (v as T) : fallback;
}

export interface AgentMetricsOptions {
  /** Node process metrics (palisade_process_*); default true. */
  readonly processMetrics?: boolean;
}

/** Typed facade; other modules call these methods, never prom-client directly. */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly verdicts: Counter<'direction' | 'action' | 'tier'>;
  private readonly drops: Counter<'reason' | 'direction'>;
  private readonly flowRecords: Counter<'sink'>;
  private readonly flowLost: Counter<'reason'>;
  private readonly compileSeconds: Histogram;
  private readonly syncSeconds: Histogram;
  private readonly mapEntries: Gauge<'map'>;
  private readonly mapCapacity: Gauge<'map'>;
  private readonly identities: Gauge;
  private readonly endpoints: Gauge;
  private readonly realized: Gauge<'state'>;
  /** Registered on first use: only agents that read the mesh store have them. */
  private mesh: { records: Gauge<'kind'>; peers: Gauge } | undefined;

  constructor(opts: AgentMetricsOptions = {}) {
    const registers = [this.registry];
    this.verdicts = new Counter({
      name: 'palisade_policy_verdicts_total',
      help: 'Policy verdicts reported by the datapath (events), by direction, action and deciding tier.',
      labelNames: ['direction', 'action', 'tier'],
      registers,
    });
    this.drops = new Counter({
      name: 'palisade_drops_total',
      help: 'Packets dropped by the datapath, by reason and direction.',
      labelNames: ['reason', 'direction'],
      registers,
    });
    this.flowRecords = new Counter({
      name: 'palisade_flow_records_total',
      help: 'Flow records written, by sink.',
      labelNames: ['sink'],
      registers,
    });
    this.flowLost = new Counter({
      name: 'palisade_flow_records_lost_total',
      help: 'Flow records not written, by reason (every one is counted).',
      labelNames: ['reason'],
      registers,
    });
    this.compileSeconds = new Histogram({
      name: 'palisade_policy_compile_seconds',
      help: 'Time to compile the world into datapath tables.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.syncSeconds = new Histogram({
      name: 'palisade_datapath_sync_seconds',
      help: 'Time to apply a compiled delta to the pinned BPF maps.',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.mapEntries = new Gauge({
      name: 'palisade_policy_map_entries',
      help: 'Entries in use per datapath map.',
      labelNames: ['map'],
      registers,
    });
    this.mapCapacity = new Gauge({
      name: 'palisade_policy_map_capacity',
      help: 'Capacity (max_entries) per datapath map.',
      labelNames: ['map'],
      registers,
    });
    this.identities = new Gauge({
      name: 'palisade_identities',
      help: 'Numeric identities allocated.',
      registers,
    });
    this.endpoints = new Gauge({
      name: 'palisade_endpoints',
      help: 'Local endpoints with a datapath entry.',
      registers,
    });
    this.realized = new Gauge({
      name: 'palisade_policy_realized',
      help: 'Policies by realization state on this node.',
      labelNames: ['state'],
      registers,
    });
    // Pre-create every label combination so dashboards see zeros, not gaps.
    for (const d of DIRECTIONS) {
      for (const a of ACTIONS)
        for (const t of TIERS) this.verdicts.inc({ direction: d, action: a, tier: t }, 0);
      for (const r of DROP_REASONS) this.drops.inc({ reason: r, direction: d }, 0);
    }
    for (const r of LOSS) this.flowLost.inc({ reason: r }, 0);
    for (const s of STATES) this.realized.set({ state: s }, 0);
    if (opts.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: 'palisade_' });
    }
  }

  verdict(direction: MetricDirection, action: MetricAction, tier: string): void {
    this.verdicts.inc({ direction, action, tier: oneOf(TIERS, tier, 'Default') });
  }
  drop(reason: string, direction: MetricDirection, packets = 1): void {
    this.drops.inc({ reason: oneOf(DROP_REASONS, reason, 'OTHER'), direction }, packets);
  }
  flowRecordWritten(sink: string, n = 1): void {
    this.flowRecords.inc({ sink: oneOf(SINKS, sink, 'other') }, n);
  }
  flowRecordsLost(reason: LossReason, n = 1): void {
    this.flowLost.inc({ reason }, n);
  }
  observeCompile(seconds: number): void {
    this.compileSeconds.observe(seconds);
  }
  observeSync(seconds: number): void {
    this.syncSeconds.observe(seconds);
  }
  setMapUsage(map: MapName, entries: number, capacity: number): void {
    this.mapEntries.set({ map }, entries);
    this.mapCapacity.set({ map }, capacity);
  }
  setIdentities(n: number): void {
    this.identities.set(n);
  }
  setEndpoints(n: number): void {
    this.endpoints.set(n);
  }
  setRealized(counts: Readonly<Record<RealizedState, number>>): void {
    for (const s of STATES) this.realized.set({ state: s }, counts[s]);
  }
  /**
   * Mesh store view: records by kind and the tunnel peers (other clusters
   * publishing a gateway endpoint). Absent from /metrics until the agent reads
   * a mesh store, so a single-cluster agent shows no always-zero mesh series.
   */
  setMesh(counts: {
    readonly clusters: number;
    readonly gateways: number;
    readonly endpoints: number;
    readonly policies: number;
  }): void {
    this.mesh ??= {
      records: new Gauge({
        name: 'palisade_mesh_records',
        help: 'Records of other clusters read from the mesh store, by kind.',
        labelNames: ['kind'],
        registers: [this.registry],
      }),
      peers: new Gauge({
        name: 'palisade_tunnel_peers',
        help: 'Other clusters in the mesh store that publish a gateway (tunnel peers).',
        registers: [this.registry],
      }),
    };
    this.mesh.records.set({ kind: 'cluster' }, counts.clusters);
    this.mesh.records.set({ kind: 'endpoint' }, counts.endpoints);
    this.mesh.records.set({ kind: 'policy' }, counts.policies);
    this.mesh.peers.set(counts.gateways);
  }
  /** Prometheus text exposition. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }
  get contentType(): string {
    return this.registry.contentType;
  }
}
