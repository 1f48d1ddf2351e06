/**
 * Where a reconcile round spends its time, stage by stage, so "policy applied
 * → enforced" latency can be attributed (docs/enforcer.md "Reconcile loop").
 * Stages are a closed set (bounded label cardinality):
 *  - queued:  submit() → the round starts (debounce and waiting for a running round)
 *  - load:    manifests → World (loadWorldFromTexts)
 *  - compile: World → encoded tables (incremental: previous numbering + table memo)
 *  - apply:   encoded tables → datapath maps (delta or full sync)
 *  - publish: status, metrics and the onApplied hook (attachments, flow attribution)
 */
import { Histogram, type Registry } from 'prom-client';
import type { CompileWork } from '../../../policy-compiler/src/compile/index.js';

export const RECONCILE_STAGES = ['queued', 'load', 'compile', 'apply', 'publish'] as const;
export type ReconcileStage = (typeof RECONCILE_STAGES)[number];

/** One round's timings, as /v1/status consumers and the status file see them. */
export interface RoundTimings {
  /** Wall clock (ms since the epoch, fractional) when the snapshot was submitted. */
  readonly submittedAtMs: number;
  /** Wall clock when the round ended (applied, or rejected). */
  readonly finishedAtMs: number;
  /** Seconds per stage that ran; a rejected round has no apply/publish. */
  readonly stages: Partial<Record<ReconcileStage, number>>;
  /** How the datapath was written: 'delta' (changed entries only), 'full', or 'none'. */
  readonly sync: 'delta' | 'full' | 'none';
  /**
   * How the compiler got there, when it ran: 'full' (no previous compile in
   * this process), 'general' (recompile reusing unchanged tables), 'pods' /
   * 'policies' (the compiler's fast paths: work proportional to the changed
   * pods, or to the changed policies' subjects).
   */
  readonly compilePath?: 'full' | CompileWork['path'];
  readonly outcome: 'applied' | 'rejected';
}

/** Sub-millisecond wall clock: the same clock in every process on the host. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

const byRegistry = new WeakMap<Registry, Histogram<'stage'>>();

/**
 * `palisade_reconcile_stage_seconds{stage}` on an agent's registry (one per
 * registry, however many reconcilers share it). All stages exist at zero.
 */
export function stageHistogram(registry: Registry): Histogram<'stage'> {
  let h = byRegistry.get(registry);
  if (!h) {
    h = new Histogram({
      name: 'palisade_reconcile_stage_seconds',
      help: 'Time a reconcile round spends per stage (queued, load, compile, apply, publish).',
      labelNames: ['stage'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    for (const s of RECONCILE_STAGES) h.zero({ stage: s });
    byRegistry.set(registry, h);
  }
  return h;
}
