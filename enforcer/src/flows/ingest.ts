/**
 * Ringbuf bytes → flow pipeline. Undecodable events and the datapath's own
 * accounting (events suppressed by the deny rate limit, ringbuf-full drops
 * read from the stats map) are counted as losses, never ignored.
 */
import { decodeEvent, type PalEvent } from './event-decode.js';
import type { FlowPipeline } from './pipeline.js';
import { toFlowRecord, type FlowContext } from './record.js';

export const SOURCE_RATE_LIMIT = 'datapath_rate_limit';
export const SOURCE_RINGBUF = 'datapath_ringbuf';
export const SOURCE_DECODE = 'event_decode';

export class EventIngest {
  decodeErrors = 0;
  constructor(
    private readonly pipeline: FlowPipeline,
    private context: FlowContext,
  ) {}

  /** Swap attribution after a recompile (new cookies, endpoints). */
  setContext(ctx: FlowContext): void {
    this.context = ctx;
  }

  /** One ringbuf sample. */
  event(bytes: Uint8Array): void {
    const r = decodeEvent(bytes);
    if (!r.ok) {
      this.decodeErrors++;
      this.pipeline.reportLost(SOURCE_DECODE, 1, 'decode_error');
      return;
    }
    this.decoded(r.event);
  }

  /** An event someone already decoded (Datapath.onEvent). */
  decoded(ev: PalEvent): void {
    if (ev.suppressedBefore > 0) {
      this.pipeline.reportLost(SOURCE_RATE_LIMIT, ev.suppressedBefore, 'rate_limited');
    }
    this.pipeline.push(toFlowRecord(ev, this.context));
  }

  /** Growth of PAL_STAT_EVENTS_LOST since the last call (the caller keeps the total). */
  ringbufLost(n: number): void {
    this.pipeline.reportLost(SOURCE_RINGBUF, n, 'ringbuf_full');
  }

  private lastLostTotal: bigint | undefined;
  /**
   * The datapath's running total of ringbuf-full drops (Datapath.eventStats().lost);
   * the first call sets the baseline (an adopted datapath's past is not ours to report).
   */
  ringbufLostTotal(total: bigint): void {
    if (this.lastLostTotal !== undefined && total > this.lastLostTotal) {
      this.ringbufLost(Number(total - this.lastLostTotal));
    }
    this.lastLostTotal = total;
  }
}
