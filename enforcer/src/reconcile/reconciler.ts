/**
 * The reconcile loop: source snapshots in, enforced datapath out.
 * Bursts are debounced; each round loads the newest snapshot, compiles it
 * incrementally (previous allocation + table memo, so unchanged things keep
 * their numbers and tables), applies it, and records per-policy status. A
 * round that fails (invalid input, over capacity, apply error) changes
 * nothing in the datapath: the previous policy stays enforced and the error
 * is reported on every policy whose new revision is not enforced.
 */
import type { EncodedTables } from '../../../policy-compiler/src/compiled.js';
import {
  compile,
  DEFAULT_LIMITS,
  type Allocation,
  type Compiled,
  type Limits,
  type TableMemo,
} from '../../../policy-compiler/src/compile/index.js';
import { formatDiagnostic, loadWorldFromTexts } from '../../../policy-compiler/src/load/index.js';
import type { EndpointId } from '../../../policy-compiler/src/model/endpoint.js';
import type { World } from '../../../policy-compiler/src/model/world.js';
import type { AgentStatus, PolicyStatus } from '../api/types.js';
import type { AgentMetrics } from '../metrics/metrics.js';
import type { SourceSnapshot } from '../sources/snapshot.js';

/** What the reconciler needs of the datapath (enforcer/src/datapath Datapath has it). */
export interface PolicyApplier {
  applyFull(
    encoded: EncodedTables,
    ifindexOf: (endpoint: EndpointId) => number | undefined,
  ): { readonly revision: number };
}

export interface ReconcilerOptions {
  readonly nodeName: string;
  readonly cluster: string;
  readonly applier: PolicyApplier;
  /** ifindex of a local pod's host-side interface; undefined = not on this node. */
  readonly ifindexOf: (endpoint: EndpointId) => number | undefined;
  readonly limits?: Partial<Limits>;
  readonly debounceMs?: number;
  readonly metrics?: AgentMetrics;
  /** After every successful apply (flow attribution swaps its context here). */
  readonly onApplied?: (compiled: Compiled, world: World) => void;
  /** Errors of a round, for the log. */
  readonly onError?: (message: string) => void;
  readonly now?: () => Date;
  /** Numbers saved by an earlier process, so a restart renumbers nothing. */
  readonly initialAllocation?: Allocation;
}

interface PolicyKey {
  readonly kind: string;
  readonly cluster: string | null;
  readonly namespace: string | null;
  readonly name: string;
  readonly revision: string;
}

const keyOf = (p: Omit<PolicyKey, 'revision'>): string =>
  `${p.kind}/${p.cluster ?? '*'}/${p.namespace ?? ''}/${p.name}`;

function policiesOf(world: World): PolicyKey[] {
  return [
    ...world.networkPolicies.map((p) => ({
      kind: p.kind,
      cluster: p.cluster,
      namespace: p.namespace,
      name: p.name,
      revision: p.revision,
    })),
    ...world.clusterPolicies.map((p) => ({
      kind: p.kind,
      cluster: p.cluster,
      namespace: null,
      name: p.name,
      revision: p.revision,
    })),
  ];
}

/** struct pal_policy_value: cookie at byte 8, staged_cookie at byte 12 (palisade.h). */
function entriesPerPolicy(encoded: EncodedTables): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of encoded.tables) {
    for (const e of t.entries) {
      const v = e.value;
      const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
      const seen = new Set<string>();
      for (const off of [8, 12]) {
        if (v.byteLength < off + 4) continue;
        const ref = encoded.cookies.get(dv.getUint32(off, true));
        if (!ref) continue;
        const k = keyOf(ref);
        if (seen.has(k)) continue;
        seen.add(k);
        out.set(k, (out.get(k) ?? 0) + 1);
      }
    }
  }
  return out;
}

export class Reconciler {
  private pending: SourceSnapshot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private allocation: Allocation | undefined;
  private memo: TableMemo | undefined;
  private enforcedRevision = new Map<string, string>();
  private enforcedEntries = new Map<string, number>();
  private latestPolicies: PolicyKey[] = [];
  private lastError: string | null = null;
  private datapathRevision = 0;
  private lastSync: Date | null = null;
  private enforced = false;
  private lastDigest: string | undefined;
  private lastSnapshot: SourceSnapshot | undefined;
  /** Rounds done, for tests and status. */
  rounds = 0;

  constructor(private readonly opts: ReconcilerOptions) {
    this.allocation = opts.initialAllocation;
  }

  /** Queues a snapshot; the newest one wins after the debounce. */
  submit(snapshot: SourceSnapshot): void {
    this.pending = snapshot;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.opts.debounceMs ?? 100);
  }

  /** Runs rounds until no snapshot is pending; resolves when done. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.running) await this.running;
    if (!this.pending) return;
    this.running = (async () => {
      while (this.pending) {
        const s = this.pending;
        this.pending = undefined;
        this.round(s);
      }
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * Re-applies the newest snapshot even if unchanged: local interfaces
   * appeared or went (ifindexOf answers differently).
   */
  resync(): void {
    if (!this.lastSnapshot) return;
    this.lastDigest = undefined;
    this.submit(this.pending ?? this.lastSnapshot);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** True once a policy set has been enforced (for /readyz). */
  isEnforced(): boolean {
    return this.enforced;
  }

  /** Per-policy realization, as /v1/status serves it. */
  status(): AgentStatus & { readonly lastError: string | null } {
    const policies: PolicyStatus[] = this.latestPolicies.map((p) => {
      const k = keyOf(p);
      const enforcedRev = this.enforcedRevision.get(k) ?? null;
      const ok = enforcedRev === p.revision;
      return {
        kind: p.kind,
        cluster: p.cluster,
        namespace: p.namespace,
        name: p.name,
        revision: p.revision,
        enforcedRevision: enforcedRev,
        state: ok ? 'enforced' : this.lastError ? 'error' : 'pending',
        entries: this.enforcedEntries.get(k) ?? 0,
        error: ok ? null : this.lastError,
      };
    });
    return {
      node: this.opts.nodeName,
      cluster: this.opts.cluster,
      datapathRevision: this.datapathRevision,
      lastSync: this.lastSync?.toISOString() ?? null,
      policies,
      lastError: this.lastError,
    };
  }

  private fail(message: string): void {
    this.lastError = message;
    this.opts.onError?.(message);
  }

  private round(s: SourceSnapshot): void {
    this.rounds++;
    this.lastSnapshot = s;
    if (s.digest === this.lastDigest && this.lastError === null) return;
    const loaded = loadWorldFromTexts(s.inputs);
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
    const problems = s.problems.map((p) => `${p.file}: ${p.message}`);
    // Show what the user asked for even when it cannot be enforced; an
    // enforced policy that no longer decodes stays listed (revision unknown).
    const decoded = policiesOf(loaded.world);
    const names = new Set(decoded.map(keyOf));
    const vanished = this.latestPolicies.filter(
      (p) => !names.has(keyOf(p)) && this.enforcedRevision.has(keyOf(p)),
    );
    if (errors.length > 0 || problems.length > 0) {
      this.latestPolicies = [...decoded, ...vanished.map((p) => ({ ...p, revision: '' }))];
      const lines = [...problems, ...errors.map(formatDiagnostic)];
      const more = lines.length > 5 ? `; and ${lines.length - 5} more` : '';
      this.fail(
        `invalid input, previous policy stays enforced: ${lines.slice(0, 5).join('; ')}${more}`,
      );
      this.publishRealized();
      return;
    }
    this.latestPolicies = decoded;
    const t0 = process.hrtime.bigint();
    const write: TableMemo = new Map();
    const result = compile(
      loaded.world,
      {
        ...(this.opts.limits ? { limits: this.opts.limits } : {}),
        ...(this.allocation ? { previous: this.allocation } : {}),
        localCluster: this.opts.cluster,
      },
      { read: this.memo, write },
    );
    this.opts.metrics?.observeCompile(Number(process.hrtime.bigint() - t0) / 1e9);
    if (!result.ok) {
      this.fail(`compile failed, previous policy stays enforced: ${result.error.message}`);
      this.publishRealized();
      return;
    }
    const compiled = result.compiled;
    const t1 = process.hrtime.bigint();
    try {
      const applied = this.opts.applier.applyFull(compiled.encoded, this.opts.ifindexOf);
      this.datapathRevision = applied.revision;
    } catch (e) {
      this.fail(`datapath sync failed, previous policy stays enforced: ${(e as Error).message}`);
      this.publishRealized();
      return;
    }
    this.opts.metrics?.observeSync(Number(process.hrtime.bigint() - t1) / 1e9);
    this.allocation = compiled.allocation;
    this.memo = write;
    this.lastDigest = s.digest;
    this.lastError = null;
    this.lastSync = (this.opts.now ?? (() => new Date()))();
    this.enforced = true;
    this.enforcedRevision = new Map(this.latestPolicies.map((p) => [keyOf(p), p.revision]));
    this.enforcedEntries = entriesPerPolicy(compiled.encoded);
    const m = this.opts.metrics;
    if (m) {
      m.setIdentities(compiled.stats.identities);
      m.setEndpoints(
        compiled.encoded.endpoints.filter((e) => this.opts.ifindexOf(e.endpoint) !== undefined)
          .length,
      );
      const L = { ...DEFAULT_LIMITS, ...(this.opts.limits ?? {}) };
      m.setMapUsage('ipcache', compiled.stats.ipcacheEntries, L.ipcache);
      m.setMapUsage('endpoints', compiled.encoded.endpoints.length, L.endpoints);
      m.setMapUsage('policy_tables', compiled.stats.tables, L.tables);
      // The fullest inner table against the per-table capacity.
      m.setMapUsage('policy_entries', compiled.stats.maxTableEntries, L.tableEntries);
      m.setMapUsage('cookies', compiled.stats.cookies, L.cookies);
    }
    this.publishRealized();
    this.opts.onApplied?.(compiled, loaded.world);
  }

  private publishRealized(): void {
    const counts = { enforced: 0, pending: 0, error: 0 };
    for (const p of this.status().policies) counts[p.state]++;
    this.opts.metrics?.setRealized(counts);
  }
}
