/**
 * The reconcile loop: source snapshots in, enforced datapath out.
 * Bursts are debounced; each round loads the newest snapshot, shares every
 * unchanged object with the previous load (so the compiler sees unchanged as
 * identical), recompiles incrementally from the state of the last applied
 * compile (unchanged things keep their numbers and tables; a pod-only change
 * takes the compiler's pod path), applies the delta, and records per-policy
 * status. A
 * round that fails (invalid input, over capacity, apply error) changes
 * nothing in the datapath: the previous policy stays enforced and the error
 * is reported on every policy whose new revision is not enforced.
 */
import type { EncodedDelta, EncodedTables } from '../../../policy-compiler/src/compiled.js';
import { decodePolicyValue } from '../../../policy-compiler/src/encode/codec.js';
import {
  DEFAULT_LIMITS,
  diffTables,
  initialState,
  recompile,
  type Allocation,
  type Compiled,
  type CompilerState,
  type Limits,
} from '../../../policy-compiler/src/compile/index.js';
import {
  formatDiagnostic,
  loadWorldFromTexts,
  ParseCache,
  type LoadResult,
} from '../../../policy-compiler/src/load/index.js';
import type { EndpointId } from '../../../policy-compiler/src/model/endpoint.js';
import { shareUnchanged } from '../../../policy-compiler/src/model/share.js';
import type { World } from '../../../policy-compiler/src/model/world.js';
import type { AgentStatus, PolicyStatus } from '../api/types.js';
import type { AgentMetrics } from '../metrics/metrics.js';
import type { SourceSnapshot } from '../sources/snapshot.js';
import { stageHistogram, wallMs, type ReconcileStage, type RoundTimings } from './stage-timings.js';

/** What the reconciler needs of the datapath (enforcer/src/datapath Datapath has it). */
export interface PolicyApplier {
  applyFull(
    encoded: EncodedTables,
    ifindexOf: (endpoint: EndpointId) => number | undefined,
  ): { readonly revision: number };
  /**
   * Optional: write only what changed since the last successful apply of this
   * process. `totals` are the sizes after the change (for the capacity check
   * before anything is written).
   */
  applyDelta?(
    delta: EncodedDelta,
    ifindexOf: (endpoint: EndpointId) => number | undefined,
    totals: { readonly ipcache: number; readonly localEndpoints: number },
  ): { readonly revision: number };
}

/**
 * A load the caller already did (the agent loads each snapshot for endpoint
 * discovery): used instead of loading again when `of` has the digest of the
 * snapshot submitted, ignored otherwise.
 */
export interface Preloaded {
  readonly of: SourceSnapshot;
  readonly loaded: LoadResult;
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
  /** Stage timings of every round that compiled or was rejected (debug log). */
  readonly onRound?: (timings: RoundTimings) => void;
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

/** Entries per policy: an entry counts for each policy whose rule it names in any tier match (enforced or staged). */
function entriesPerPolicy(encoded: EncodedTables): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of encoded.tables) {
    for (const e of t.entries) {
      const v = decodePolicyValue(e.value);
      const seen = new Set<string>();
      for (const m of [...v.enforced, ...v.staged]) {
        if (m.rank === 0) continue;
        const ref = encoded.cookies.get(m.cookie);
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
  private pendingPreloaded: Preloaded | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Numbering for a compile from scratch (no state yet, or state dropped). */
  private allocation: Allocation | undefined;
  /** The compile that was last applied successfully; the next round recompiles from it. */
  private state: CompilerState | undefined;
  private enforcedRevision = new Map<string, string>();
  private enforcedEntries = new Map<string, number>();
  private latestPolicies: PolicyKey[] = [];
  private lastError: string | null = null;
  private datapathRevision = 0;
  private lastSync: Date | null = null;
  private enforced = false;
  private lastDigest: string | undefined;
  private lastSnapshot: SourceSnapshot | undefined;
  private submittedAtMs = 0;
  private lastRound: RoundTimings | null = null;
  /**
   * What this process last wrote successfully. Deltas are taken against it;
   * undefined (first round, after a failed apply, after a resync) = full sync.
   */
  private appliedEncoded: EncodedTables | undefined;
  /** ifindexOf of every endpoint of appliedEncoded, as it answered then (undefined = not local). */
  private appliedIfindex = new Map<EndpointId, number | undefined>();
  /** Unchanged files are not parsed again (parsing is most of a load). */
  private readonly parseCache = new ParseCache();
  /** Rounds done, for tests and status. */
  rounds = 0;

  constructor(private readonly opts: ReconcilerOptions) {
    this.allocation = opts.initialAllocation;
  }

  /** Queues a snapshot; the newest one wins after the debounce. */
  submit(snapshot: SourceSnapshot, preloaded?: Preloaded): void {
    // The oldest unhandled submit counts: a burst is queued from its first snapshot.
    if (!this.pending) this.submittedAtMs = wallMs();
    this.pending = snapshot;
    this.pendingPreloaded = preloaded;
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
        const pre = this.pendingPreloaded;
        const submittedAtMs = this.submittedAtMs;
        this.pending = undefined;
        this.pendingPreloaded = undefined;
        this.round(s, submittedAtMs, pre?.of.digest === s.digest ? pre.loaded : undefined);
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
    // ifindexOf answers differently now: endpoints must be rewritten, not diffed.
    this.appliedEncoded = undefined;
    if (this.pending) this.submit(this.pending, this.pendingPreloaded);
    else this.submit(this.lastSnapshot);
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
  status(): AgentStatus & {
    readonly lastError: string | null;
    readonly lastRound: RoundTimings | null;
  } {
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
      lastRound: this.lastRound,
    };
  }

  private fail(message: string): void {
    this.lastError = message;
    this.opts.onError?.(message);
  }

  private round(s: SourceSnapshot, submittedAtMs: number, preloaded?: LoadResult): void {
    this.rounds++;
    this.lastSnapshot = s;
    if (s.digest === this.lastDigest && this.lastError === null) return;
    const stages: Partial<Record<ReconcileStage, number>> = {};
    let mark = wallMs();
    stages.queued = Math.max(0, mark - submittedAtMs) / 1000;
    const lap = (stage: ReconcileStage): number => {
      const now = wallMs();
      stages[stage] = (now - mark) / 1000;
      mark = now;
      return stages[stage] as number;
    };
    const finish = (
      outcome: RoundTimings['outcome'],
      sync: RoundTimings['sync'],
      compilePath?: RoundTimings['compilePath'],
    ): void => {
      const t: RoundTimings = {
        submittedAtMs,
        finishedAtMs: wallMs(),
        stages,
        sync,
        outcome,
        ...(compilePath ? { compilePath } : {}),
      };
      this.lastRound = t;
      const m = this.opts.metrics;
      if (m) {
        const h = stageHistogram(m.registry);
        for (const [stage, secs] of Object.entries(stages)) h.observe({ stage }, secs);
      }
      this.opts.onRound?.(t);
    };
    const loaded = preloaded ?? loadWorldFromTexts(s.inputs, { parseCache: this.parseCache });
    lap('load');
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
      finish('rejected', 'none');
      return;
    }
    this.latestPolicies = decoded;
    const prevState = this.state;
    const world = shareUnchanged(prevState?.world, loaded.world);
    const recompiled = prevState ? recompile(prevState, world) : undefined;
    const result =
      recompiled ??
      initialState(
        world,
        {
          ...(this.opts.limits ? { limits: this.opts.limits } : {}),
          localCluster: this.opts.cluster,
        },
        this.allocation,
      );
    // lap() before the optional call: a reconciler without metrics still times its stages.
    const compileSeconds = lap('compile');
    this.opts.metrics?.observeCompile(compileSeconds);
    if (!result.ok) {
      // The compiler left prevState as it was: the next round starts from it again.
      this.fail(`compile failed, previous policy stays enforced: ${result.error.message}`);
      this.publishRealized();
      finish('rejected', 'none');
      return;
    }
    const compilePath = recompiled?.ok ? recompiled.work.path : 'full';
    const compiled = result.state.compiled;
    // The compiler's delta is against prevState, which is what was last applied
    // unless a resync or failed apply cleared appliedEncoded (then: full sync).
    const compilerDelta =
      recompiled?.ok === true && prevState?.compiled.encoded === this.appliedEncoded
        ? recompiled.delta
        : undefined;
    const ifindexNow = new Map<EndpointId, number | undefined>();
    let localEndpoints = 0;
    // A delta writes only endpoints whose compiled entry changed: if an
    // unchanged endpoint moved to another interface (pod re-created under the
    // same name), only a full sync rewrites it.
    let moved = false;
    for (const e of compiled.encoded.endpoints) {
      const ifindex = this.opts.ifindexOf(e.endpoint);
      ifindexNow.set(e.endpoint, ifindex);
      if (ifindex !== undefined) localEndpoints++;
      if (this.appliedIfindex.has(e.endpoint) && this.appliedIfindex.get(e.endpoint) !== ifindex)
        moved = true;
    }
    const applier = this.opts.applier;
    const previous = this.appliedEncoded;
    const sync: RoundTimings['sync'] = previous && applier.applyDelta && !moved ? 'delta' : 'full';
    // Until this apply succeeds the maps may hold a mix: the next round syncs in full.
    this.appliedEncoded = undefined;
    try {
      const applied =
        sync === 'delta' && previous && applier.applyDelta
          ? applier.applyDelta(
              compilerDelta ?? diffTables(previous, compiled.encoded),
              this.opts.ifindexOf,
              {
                ipcache: compiled.encoded.ipcache.length,
                localEndpoints,
              },
            )
          : applier.applyFull(compiled.encoded, this.opts.ifindexOf);
      this.datapathRevision = applied.revision;
    } catch (e) {
      lap('apply');
      // The maps hold a mix now; the next round compiles afresh (same numbering) and syncs in full.
      this.state = undefined;
      this.fail(`datapath sync failed, previous policy stays enforced: ${(e as Error).message}`);
      this.publishRealized();
      finish('rejected', sync, compilePath);
      return;
    }
    const applySeconds = lap('apply');
    this.opts.metrics?.observeSync(applySeconds);
    this.appliedEncoded = compiled.encoded;
    this.appliedIfindex = ifindexNow;
    this.allocation = compiled.allocation;
    this.state = result.state;
    this.lastDigest = s.digest;
    this.lastError = null;
    this.lastSync = (this.opts.now ?? (() => new Date()))();
    this.enforced = true;
    this.enforcedRevision = new Map(this.latestPolicies.map((p) => [keyOf(p), p.revision]));
    this.enforcedEntries = entriesPerPolicy(compiled.encoded);
    const m = this.opts.metrics;
    if (m) {
      m.setIdentities(compiled.stats.identities);
      m.setEndpoints(localEndpoints);
      const L = { ...DEFAULT_LIMITS, ...(this.opts.limits ?? {}) };
      m.setMapUsage('ipcache', compiled.stats.ipcacheEntries, L.ipcache);
      // pal_endpoints holds this node's endpoints only (the limit is per node).
      m.setMapUsage('endpoints', localEndpoints, L.endpoints);
      m.setMapUsage('policy_tables', compiled.stats.tables, L.tables);
      // The fullest inner table against the per-table capacity.
      m.setMapUsage('policy_entries', compiled.stats.maxTableEntries, L.tableEntries);
      m.setMapUsage('cookies', compiled.stats.cookies, L.cookies);
    }
    this.publishRealized();
    this.opts.onApplied?.(compiled, world);
    lap('publish');
    finish('applied', sync, compilePath);
  }

  private publishRealized(): void {
    const counts = { enforced: 0, pending: 0, error: 0 };
    for (const p of this.status().policies) counts[p.state]++;
    this.opts.metrics?.setRealized(counts);
  }
}
