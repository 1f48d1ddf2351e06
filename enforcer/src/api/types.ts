/** What the API serves, supplied by the agent (reconcile loop, engines). */
import type { Probe } from '../../../policy-compiler/src/engine.js';

/** Realization of one policy on this node. */
export interface PolicyStatus {
  readonly kind: string;
  readonly cluster: string | null;
  readonly namespace: string | null;
  readonly name: string;
  /** Revision the source currently has. */
  readonly revision: string;
  /** Revision enforced in the datapath; null = not enforced yet. */
  readonly enforcedRevision: string | null;
  readonly state: 'enforced' | 'pending' | 'error';
  /** Map entries this policy contributes (0 when unknown). */
  readonly entries: number;
  /** Why the latest revision is not enforced. */
  readonly error: string | null;
}

export interface AgentStatus {
  readonly node: string;
  readonly cluster: string;
  /** config.revision of the datapath; 0 before the first sync. */
  readonly datapathRevision: number;
  readonly lastSync: string | null;
  readonly policies: readonly PolicyStatus[];
  /** Why the newest input is not enforced (invalid, over capacity, sync failed); null when it is. */
  readonly lastError?: string | null;
  /** Per source: state and what it could not use (never blocking enforcement; see docs/enforcer.md "Sources"). */
  readonly sources?: readonly SourceStatus[];
}

/** One record or object a source skipped, ignored or left to another source. */
export interface SourceNote {
  readonly key: string;
  /** problem: unusable (skipped); foreign: another cluster's object; ignored: not for us; shadowed: another source wins. */
  readonly kind: string;
  readonly message: string;
}

export interface SourceStatus {
  /** directory, kubernetes or mesh */
  readonly name: string;
  readonly state: string;
  readonly problems: number;
  readonly ignored: number;
  /** At most 100 notes, problems first. */
  readonly notes: readonly SourceNote[];
  readonly counts?: Readonly<Record<string, number>>;
  readonly revision?: string;
  readonly lastError?: string | null;
}

/** Thrown by an evaluate function for a probe it cannot answer (unknown endpoint…): 400. */
export class BadProbeError extends Error {
  override readonly name = 'BadProbeError';
}

export type EvaluateFn = (probe: Probe) => unknown | Promise<unknown>;
