/**
 * The flow pipeline: records in (from the ringbuf reader), sinks out, through
 * one bounded queue. Under overload it sheds ALLOWED flows first (sampling
 * above a watermark, evicting queued allowed flows when full) and drops a deny
 * or audit record only when nothing else is left to shed. Nothing is dropped
 * silently: every record not written is counted by reason (metrics) and by
 * source (periodic `lost_events` records, FORMATS.md).
 */
import type { AgentMetrics, LossReason, MetricAction } from '../metrics/metrics.js';
import type { FlowFilter } from './filter.js';
import type { EncodedBatch, FlowSink } from './sinks.js';
import { lostEventsRecord, type AnyFlowRecord, type FlowRecord } from './record.js';

export interface PipelineOptions {
  readonly sinks: readonly FlowSink[];
  /** `<cluster>/<node>`, for loss records. */
  readonly nodeName: string;
  /** Records waiting for the sinks, at most (default 65536). */
  readonly queueCapacity?: number;
  /** Fraction of capacity above which allowed flows are sampled (default 0.5). */
  readonly highWatermark?: number;
  /** Above the watermark keep one allowed flow in N (default 10). */
  readonly sampleAllowedEvery?: number;
  /** Records handed to a sink per write (default 512). */
  readonly batchSize?: number;
  /** Recent records kept in memory for the API (default 10000). */
  readonly ringCapacity?: number;
  /** What is kept; lost_events records always are. */
  readonly filter?: FlowFilter;
  readonly metrics?: AgentMetrics;
  /** Count verdict/drop metrics from events here (default true). */
  readonly countVerdicts?: boolean;
  /** Emit lost_events records this often (default 10 s; 0 = only on flushLoss/close). */
  readonly lostReportIntervalMs?: number;
  readonly now?: () => Date;
}

/** Source name of losses inside the pipeline itself. */
export const PIPELINE_SOURCE = 'flow_pipeline';

interface Entry {
  readonly rec: AnyFlowRecord;
  dead: boolean;
}

interface Loss {
  count: number;
  first: Date;
  last: Date;
}

export interface PipelineStats {
  /** Flow records accepted into the queue (after the filter). */
  accepted: number;
  /** Records that did not match the filter (a choice, not a loss). */
  filtered: number;
  /** Records given to the sinks (flows and loss records). */
  delivered: number;
  /** Flow records not written, by reason. */
  lost: Record<LossReason, number>;
}

const isAllowed = (r: FlowRecord): boolean => r.flow.verdict === 'FORWARDED';

export class FlowPipeline {
  private readonly capacity: number;
  private readonly watermark: number;
  private readonly sampleEvery: number;
  private readonly batchSize: number;
  private readonly ringCapacity: number;
  private readonly now: () => Date;
  private queue: Entry[] = [];
  private head = 0;
  private live = 0;
  /** Queued allowed entries, oldest first, for eviction. */
  private allowedQueue: Entry[] = [];
  private allowedHead = 0;
  private allowedSeen = 0;
  private readonly ring: AnyFlowRecord[] = [];
  private ringStart = 0;
  private readonly subscribers = new Set<(r: AnyFlowRecord) => void>();
  private readonly losses = new Map<string, Loss>();
  private pumping = false;
  private idleWaiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly stats: PipelineStats = {
    accepted: 0,
    filtered: 0,
    delivered: 0,
    lost: {
      queue_full: 0,
      sink_error: 0,
      sampled: 0,
      ringbuf_full: 0,
      rate_limited: 0,
      decode_error: 0,
    },
  };

  constructor(private readonly opts: PipelineOptions) {
    this.capacity = opts.queueCapacity ?? 65536;
    this.watermark = Math.floor(this.capacity * (opts.highWatermark ?? 0.5));
    this.sampleEvery = Math.max(1, opts.sampleAllowedEvery ?? 10);
    this.batchSize = Math.max(1, opts.batchSize ?? 512);
    this.ringCapacity = opts.ringCapacity ?? 10000;
    this.now = opts.now ?? (() => new Date());
    if (!(this.capacity >= 1)) throw new Error(`queueCapacity must be >= 1 (got ${this.capacity})`);
    const every = opts.lostReportIntervalMs ?? 10_000;
    if (every > 0) {
      this.timer = setInterval(() => this.flushLoss(), every);
      this.timer.unref();
    }
  }

  /** Records currently queued. */
  get queued(): number {
    return this.live;
  }

  /**
   * Offers one record. Returns false when it was not accepted (filtered out
   * or shed); a shed record is counted, never silently gone.
   */
  push(rec: FlowRecord): boolean {
    if (this.closed) {
      this.lose('queue_full', PIPELINE_SOURCE, 1);
      return false;
    }
    this.countVerdict(rec);
    if (this.opts.filter && !this.opts.filter.matches(rec)) {
      this.stats.filtered++;
      return false;
    }
    if (isAllowed(rec)) {
      if (this.live >= this.watermark && this.live > 0) {
        if (this.allowedSeen++ % this.sampleEvery !== 0 || this.live >= this.capacity) {
          this.lose('sampled', PIPELINE_SOURCE, 1);
          return false;
        }
      }
    } else if (this.live >= this.capacity && !this.evictAllowed()) {
      this.lose('queue_full', PIPELINE_SOURCE, 1);
      return false;
    }
    const e: Entry = { rec, dead: false };
    this.queue.push(e);
    this.live++;
    if (isAllowed(rec)) this.allowedQueue.push(e);
    this.stats.accepted++;
    this.kick();
    return true;
  }

  /** Losses that happened before the pipeline (ringbuf full, datapath rate limit). */
  reportLost(source: string, n: number, reason: LossReason = 'ringbuf_full'): void {
    if (n > 0) this.lose(reason, source, n);
  }

  /** Queues one lost_events record per source with unreported losses. */
  flushLoss(): void {
    const now = this.now();
    for (const [source, l] of this.losses) {
      const rec = lostEventsRecord(this.opts.nodeName, source, l.count, l.first, l.last, now);
      // Loss records bypass capacity: one per source at most per flush, so bounded.
      this.queue.push({ rec, dead: false });
      this.live++;
    }
    this.losses.clear();
    this.kick();
  }

  /** Live follow: called with every record once the sinks had it. Returns unsubscribe. */
  subscribe(cb: (r: AnyFlowRecord) => void): () => void {
    this.subscribers.add(cb);
    return () => this.subscribers.delete(cb);
  }

  /** The most recent delivered records, oldest first. */
  recent(): AnyFlowRecord[] {
    return [...this.ring.slice(this.ringStart), ...this.ring.slice(0, this.ringStart)];
  }

  /** Resolves once nothing is queued and no write is in flight. */
  drained(): Promise<void> {
    if (!this.pumping && this.live === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Reports outstanding losses, drains, closes the sinks. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.flushLoss();
    this.closed = true;
    await this.drained();
    for (const s of this.opts.sinks) await s.close();
  }

  private countVerdict(rec: FlowRecord): void {
    const m = this.opts.metrics;
    if (!m || this.opts.countVerdicts === false) return;
    const f = rec.flow;
    const dir = f.traffic_direction === 'EGRESS' ? 'egress' : 'ingress';
    const action: MetricAction =
      f.verdict === 'FORWARDED' ? 'allow' : f.verdict === 'AUDIT' ? 'audit' : 'deny';
    m.verdict(dir, action, f.rule.tier);
    if (f.verdict === 'DROPPED')
      m.drop(f.drop_reason_desc ?? 'OTHER', dir, 1 + (f.suppressed_before ?? 0));
  }

  private lose(reason: LossReason, source: string, n: number): void {
    this.stats.lost[reason] += n;
    this.opts.metrics?.flowRecordsLost(reason, n);
    const now = this.now();
    const l = this.losses.get(source);
    if (l) {
      l.count += n;
      l.last = now;
    } else {
      this.losses.set(source, { count: n, first: now, last: now });
    }
  }

  /** Drops the oldest queued allowed flow to make room; false if there is none. */
  private evictAllowed(): boolean {
    while (this.allowedHead < this.allowedQueue.length) {
      const e = this.allowedQueue[this.allowedHead++] as Entry;
      if (e.dead) continue;
      e.dead = true;
      this.live--;
      this.lose('sampled', PIPELINE_SOURCE, 1);
      return true;
    }
    return false;
  }

  private take(): AnyFlowRecord[] {
    const out: AnyFlowRecord[] = [];
    while (out.length < this.batchSize && this.head < this.queue.length) {
      const e = this.queue[this.head++] as Entry;
      if (e.dead) continue;
      e.dead = true; // taken: no longer evictable
      this.live--;
      out.push(e.rec);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.allowedHead > 1024 && this.allowedHead * 2 > this.allowedQueue.length) {
      this.allowedQueue = this.allowedQueue.slice(this.allowedHead);
      this.allowedHead = 0;
    }
    return out;
  }

  private kick(): void {
    if (!this.pumping) void this.pump();
  }

  /**
   * Takes batches and hands them to the sinks, in order. Two stages: while
   * batch N is being written, batch N+1 is taken and encoded by the sinks
   * that split their write (FlowSink.encode), so serializing and the file
   * write overlap instead of taking turns.
   */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      let batch = this.take();
      let encoded = this.encodeAll(batch);
      while (batch.length > 0) {
        const writing = this.writeAll(batch, encoded);
        const next = this.take();
        const nextEncoded = next.length > 0 ? this.encodeAll(next) : [];
        await writing;
        this.stats.delivered += batch.length;
        for (const r of batch) this.publish(r);
        batch = next;
        encoded = nextEncoded;
      }
    } finally {
      this.pumping = false;
      if (this.live === 0) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const r of w) r();
      } else {
        this.kick();
      }
    }
  }

  /** Per sink: its encoded batch, undefined for a sink without encode, an error if encode threw. */
  private encodeAll(batch: readonly AnyFlowRecord[]): (EncodedBatch | Error | undefined)[] {
    return this.opts.sinks.map((sink) => {
      if (!sink.encode || !sink.writeEncoded) return undefined;
      try {
        return sink.encode(batch);
      } catch (e) {
        return e instanceof Error ? e : new Error(String(e));
      }
    });
  }

  private async writeAll(
    batch: readonly AnyFlowRecord[],
    encoded: readonly (EncodedBatch | Error | undefined)[],
  ): Promise<void> {
    let flows = 0;
    for (const r of batch) if ('flow' in r) flows++;
    const sinks = this.opts.sinks;
    for (let i = 0; i < sinks.length; i++) {
      const sink = sinks[i] as FlowSink;
      const enc = encoded[i];
      try {
        if (enc instanceof Error) throw enc;
        if (enc !== undefined && sink.writeEncoded) await sink.writeEncoded(enc);
        else await sink.write(batch);
        this.opts.metrics?.flowRecordWritten(sink.kind, batch.length);
      } catch {
        if (flows > 0) this.lose('sink_error', `sink:${sink.kind}`, flows);
      }
    }
  }

  private publish(r: AnyFlowRecord): void {
    if (this.ringCapacity > 0) {
      if (this.ring.length < this.ringCapacity) this.ring.push(r);
      else {
        this.ring[this.ringStart] = r;
        this.ringStart = (this.ringStart + 1) % this.ringCapacity;
      }
    }
    for (const s of this.subscribers) {
      try {
        s(r);
      } catch {
        // A subscriber's failure is its own (the API counts its client's losses).
      }
    }
  }
}
