import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeEvent } from '../../enforcer/src/flows/event-decode.js';
import { compileFilter } from '../../enforcer/src/flows/filter.js';
import { validateOcsfNetworkActivity } from '../../enforcer/src/flows/ocsf-validate.js';
import { FlowPipeline, PIPELINE_SOURCE } from '../../enforcer/src/flows/pipeline.js';
import {
  toFlowRecord,
  type AnyFlowRecord,
  type FlowRecord,
  type LostEventsRecord,
} from '../../enforcer/src/flows/record.js';
import {
  NdjsonFileSink,
  OcsfFileSink,
  StreamSink,
  type FlowSink,
} from '../../enforcer/src/flows/sinks.js';
import { AgentMetrics } from '../../enforcer/src/metrics/index.js';
import { buildEvent } from './event-builder.js';
import { makeContext } from './flow-context.js';

const dir = mkdtempSync(join(tmpdir(), 'palisade-flows-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let seq = 0;
function flow(kind: 'allow' | 'deny' | 'audit'): FlowRecord {
  const r = decodeEvent(
    buildEvent({
      tsNs: BigInt(++seq),
      type: kind === 'allow' ? 2 : kind === 'deny' ? 1 : 3,
      verdict: kind === 'deny' ? 0 : 1,
      staged: kind === 'audit' ? 1 : 0,
      cookie: kind === 'deny' ? 11 : 12,
    }),
  );
  if (!r.ok) throw new Error(r.error);
  return toFlowRecord(r.event, makeContext());
}

/** A sink that holds every write until released: overload without timing. */
class GateSink implements FlowSink {
  readonly kind = 'memory';
  readonly written: AnyFlowRecord[] = [];
  private gate: Promise<void>;
  private open!: () => void;
  constructor() {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open();
  }
  async write(batch: readonly AnyFlowRecord[]): Promise<void> {
    await this.gate;
    this.written.push(...batch);
  }
  async close(): Promise<void> {}
}

const flowsOf = (rs: AnyFlowRecord[]): FlowRecord[] =>
  rs.filter((r): r is FlowRecord => 'flow' in r);
const lossOf = (rs: AnyFlowRecord[]): LostEventsRecord[] =>
  rs.filter((r): r is LostEventsRecord => 'lost_events' in r);

describe('flow pipeline under overload', () => {
  it('sheds allowed flows first, writes every deny, counts every loss', async () => {
    const sink = new GateSink();
    const metrics = new AgentMetrics({ processMetrics: false });
    const p = new FlowPipeline({
      sinks: [sink],
      nodeName: 'east/node-a',
      queueCapacity: 20,
      highWatermark: 0.5,
      sampleAllowedEvery: 4,
      batchSize: 5,
      metrics,
      lostReportIntervalMs: 0,
    });
    const pushed = { allow: 0, deny: 0, audit: 0 };
    // 400 records while the sink is stuck: 3 allowed for each deny, audits sprinkled in.
    for (let i = 0; i < 400; i++) {
      const kind = i % 10 === 9 ? 'audit' : i % 4 === 3 ? 'deny' : 'allow';
      pushed[kind]++;
      p.push(flow(kind));
    }
    expect(p.queued).toBeLessThanOrEqual(20);
    p.flushLoss();
    sink.release();
    await p.drained();
    const written = flowsOf(sink.written);
    const total = pushed.allow + pushed.deny + pushed.audit;
    const lost = p.stats.lost.sampled + p.stats.lost.queue_full;
    // Every record is either written or counted.
    expect(written.length + lost).toBe(total);
    // Denies and audits are dropped only when no allowed flow is left to shed.
    const deniesWritten = written.filter((r) => r.flow.verdict !== 'FORWARDED').length;
    expect(deniesWritten + p.stats.lost.queue_full).toBe(pushed.deny + pushed.audit);
    expect(written.filter((r) => r.flow.verdict === 'FORWARDED').length).toBeLessThan(pushed.allow);
    // The loss record carries the same count as the metrics.
    const loss = lossOf(sink.written);
    expect(loss).toHaveLength(1);
    expect(loss[0]?.lost_events).toMatchObject({ source: PIPELINE_SOURCE, num_events_lost: lost });
    const text = await metrics.text();
    expect(text).toContain(
      `palisade_flow_records_lost_total{reason="sampled"} ${p.stats.lost.sampled}`,
    );
    expect(text).toContain(`palisade_flow_records_total{sink="memory"} ${sink.written.length}`);
    // Order is preserved among what was written.
    const times = written.map((r) => r.flow.time);
    expect([...times].sort()).toEqual(times);
  });

  it('when only denies overflow, the excess is counted as queue_full and reported', async () => {
    const sink = new GateSink();
    const p = new FlowPipeline({
      sinks: [sink],
      nodeName: 'n',
      queueCapacity: 8,
      batchSize: 1,
      lostReportIntervalMs: 0,
    });
    for (let i = 0; i < 50; i++) p.push(flow('deny'));
    p.reportLost('datapath_ringbuf', 7);
    p.flushLoss();
    sink.release();
    await p.drained();
    const written = flowsOf(sink.written).length;
    expect(written).toBe(9); // one in flight + a full queue
    expect(p.stats.lost.queue_full).toBe(41);
    const bySource = Object.fromEntries(
      lossOf(sink.written).map((r) => [r.lost_events.source, r.lost_events.num_events_lost]),
    );
    expect(bySource).toEqual({ [PIPELINE_SOURCE]: 41, datapath_ringbuf: 7 });
  });

  it('a failing sink is counted as sink_error; others still get the batch', async () => {
    const good = new GateSink();
    good.release();
    const bad: FlowSink = {
      kind: 'ocsf',
      write: async () => Promise.reject(new Error('disk full')),
      close: async () => {},
    };
    const p = new FlowPipeline({ sinks: [bad, good], nodeName: 'n', lostReportIntervalMs: 0 });
    for (let i = 0; i < 5; i++) p.push(flow('deny'));
    await p.drained();
    expect(p.stats.lost.sink_error).toBe(5);
    expect(flowsOf(good.written)).toHaveLength(5);
    p.flushLoss();
    await p.drained();
    expect(lossOf(good.written)[0]?.lost_events).toMatchObject({
      source: 'sink:ocsf',
      num_events_lost: 5,
    });
  });

  it('filters, keeps a recent ring and feeds subscribers', async () => {
    const filter = compileFilter("flow.verdict == 'DROPPED'");
    if (!filter.ok) throw new Error(filter.error.message);
    const p = new FlowPipeline({
      sinks: [],
      nodeName: 'n',
      ringCapacity: 3,
      filter: filter.filter,
      lostReportIntervalMs: 0,
    });
    const seen: AnyFlowRecord[] = [];
    const off = p.subscribe((r) => seen.push(r));
    for (let i = 0; i < 5; i++) {
      p.push(flow('deny'));
      p.push(flow('allow'));
    }
    await p.drained();
    off();
    p.push(flow('deny'));
    await p.drained();
    expect(p.stats.filtered).toBe(5);
    expect(seen).toHaveLength(5);
    expect(p.recent()).toHaveLength(3);
    expect(flowsOf(p.recent()).every((r) => r.flow.verdict === 'DROPPED')).toBe(true);
    await p.close();
  });
});

/**
 * A two-stage sink (encode, then writeEncoded) that records the order of
 * calls and holds each write until released.
 */
class StagedSink implements FlowSink {
  readonly kind = 'memory';
  readonly log: string[] = [];
  readonly written: AnyFlowRecord[][] = [];
  readonly pending: (() => void)[] = [];
  inFlight = 0;
  encodedAhead = 0;
  maxAhead = 0;
  failEncodeOf = -1;
  private n = 0;
  encode(batch: readonly AnyFlowRecord[]): { lines: number; id: number; batch: AnyFlowRecord[] } {
    const id = this.n++;
    this.log.push(`encode ${id}`);
    if (id === this.failEncodeOf) throw new Error('encode failed');
    this.encodedAhead++;
    this.maxAhead = Math.max(this.maxAhead, this.encodedAhead);
    return { lines: batch.length, id, batch: [...batch] };
  }
  async writeEncoded(e: { lines: number }): Promise<void> {
    const enc = e as unknown as { id: number; batch: AnyFlowRecord[] };
    this.encodedAhead--;
    this.inFlight++;
    expect(this.inFlight).toBe(1); // never two writes at once
    this.log.push(`write ${enc.id}`);
    await new Promise<void>((r) => this.pending.push(r));
    this.written.push(enc.batch);
    this.inFlight--;
  }
  async write(): Promise<void> {
    throw new Error('a two-stage sink is written through writeEncoded');
  }
  async close(): Promise<void> {}
}

async function releaseAll(sink: StagedSink, p: FlowPipeline): Promise<void> {
  for (let i = 0; i < 100 && (sink.pending.length > 0 || p.queued > 0); i++) {
    sink.pending.shift()?.();
    await new Promise((r) => setImmediate(r));
  }
  await p.drained();
}

describe('flow pipeline with a two-stage sink', () => {
  it('encodes the next batch while one is written, writes in order, one at a time', async () => {
    const sink = new StagedSink();
    const p = new FlowPipeline({
      sinks: [sink],
      nodeName: 'n',
      batchSize: 2,
      lostReportIntervalMs: 0,
    });
    const offered = Array.from({ length: 7 }, (_, i) => flow(i % 2 ? 'deny' : 'allow'));
    for (const r of offered) p.push(r);
    // the first push started batch 0 (one record); the rest waited
    await releaseAll(sink, p);
    expect(sink.written.flat()).toEqual(offered);
    // batch N+1 is encoded before batch N's write finished, never further ahead
    expect(sink.log.slice(0, 3)).toEqual(['encode 0', 'write 0', 'encode 1']);
    expect(sink.maxAhead).toBeLessThanOrEqual(2);
    for (let i = 1; i < sink.written.length - 1; i++)
      expect(sink.log.indexOf(`encode ${i + 1}`)).toBeGreaterThan(sink.log.indexOf(`write ${i}`));
    expect(p.stats.delivered).toBe(7);
    const closing = p.close();
    await releaseAll(sink, p);
    await closing;
  });

  it('a batch whose encode throws is counted as sink_error; later batches are written', async () => {
    const sink = new StagedSink();
    sink.failEncodeOf = 1;
    const metrics = new AgentMetrics({ processMetrics: false });
    const p = new FlowPipeline({
      sinks: [sink],
      nodeName: 'n',
      batchSize: 2,
      lostReportIntervalMs: 0,
      metrics,
    });
    const offered = Array.from({ length: 5 }, () => flow('deny'));
    for (const r of offered) p.push(r);
    await releaseAll(sink, p);
    // batch 0 = 1 record, batch 1 = 2 records (encode failed), batch 2 = 2 records
    expect(p.stats.lost.sink_error).toBe(2);
    expect(sink.written.flat()).toEqual([offered[0], offered[3], offered[4]]);
    expect(sink.written.flat().length + p.stats.lost.sink_error).toBe(offered.length);
    // and the loss is reported in a lost_events record
    const closing = p.close();
    await releaseAll(sink, p);
    await closing;
    expect(lossOf(sink.written.flat())).toMatchObject([
      { lost_events: { source: 'sink:memory', num_events_lost: 2 } },
    ]);
  });
});

describe('flow sinks', () => {
  it('NDJSON rotates by size and keeps maxFiles old files', async () => {
    const path = join(dir, 'flows.ndjson');
    const sink = new NdjsonFileSink(path, { maxBytes: 4096, maxFiles: 2 });
    const all: FlowRecord[] = [];
    for (let i = 0; i < 60; i++) {
      const batch = [flow('deny'), flow('allow')];
      all.push(...batch);
      await sink.write(batch);
    }
    await sink.close();
    const files = readdirSync(dir)
      .filter((f) => f.startsWith('flows.ndjson'))
      .sort();
    expect(files).toEqual(['flows.ndjson', 'flows.ndjson.1', 'flows.ndjson.2']);
    for (const f of files) expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(4096);
    // Newest records survive, in order, whole lines only.
    const lines = ['flows.ndjson.2', 'flows.ndjson.1', 'flows.ndjson']
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as FlowRecord);
    expect(lines.length).toBeLessThan(all.length);
    expect(lines.map((r) => r.flow.uuid)).toEqual(all.slice(-lines.length).map((r) => r.flow.uuid));
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });

  it('a batch larger than the room left is split at line ends: no file passes maxBytes', async () => {
    const path = join(dir, 'big.ndjson');
    const sink = new NdjsonFileSink(path, { maxBytes: 4096, maxFiles: 30 });
    const batch: AnyFlowRecord[] = [];
    for (let i = 0; i < 40; i++) {
      batch.push(flow(i % 2 ? 'allow' : 'deny'));
      // multi-byte text: byte counts, not string lengths, decide the split
      batch.push({
        lost_events: {
          source: `sink:ünïcødé-${'€'.repeat(i)}`,
          num_events_lost: i,
          first: '',
          last: '',
        },
        node_name: 'east/node-ä',
        time: '',
      });
    }
    await sink.write(batch.slice(0, 3)); // a partly filled file first
    await sink.write(batch.slice(3)); // one batch spanning several files
    await sink.close();
    const files = readdirSync(dir)
      .filter((f) => f.startsWith('big.ndjson'))
      .sort((x, y) => Number(y.split('.')[2] ?? 0) - Number(x.split('.')[2] ?? 0));
    expect(files.length).toBeGreaterThan(5);
    const lines: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text.endsWith('\n')).toBe(true);
      expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(4096);
      lines.push(...text.split('\n').filter(Boolean));
    }
    expect(lines).toEqual(batch.map((r) => JSON.stringify(r)));
  });

  it('OCSF sink writes valid 4001 events and skips loss records', async () => {
    const path = join(dir, 'flows.ocsf.json');
    const sink = new OcsfFileSink(path, { maxBytes: 1 << 20, maxFiles: 1 });
    await sink.write([
      flow('deny'),
      flow('allow'),
      {
        lost_events: { source: 's', num_events_lost: 1, first: '', last: '' },
        node_name: 'n',
        time: '',
      },
    ]);
    await sink.close();
    const events = readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(events).toHaveLength(2);
    for (const e of events) expect(validateOcsfNetworkActivity(e)).toEqual([]);
    expect(events.map((e) => e.activity_id)).toEqual([5, 1]);
  });

  it('stream sink writes NDJSON lines', async () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c) => chunks.push(String(c)));
    await new StreamSink(out).write([flow('deny')]);
    const parsed = JSON.parse(chunks.join('').trim());
    expect(parsed.flow.verdict).toBe('DROPPED');
    expect(parsed.node_name).toBe('east/node-a');
  });
});
