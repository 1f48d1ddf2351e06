/**
 * The mesh store (etcd) as a source: other clusters' Cluster records and
 * endpoints, and the MeshNetworkPolicies, as a MeshView the agent merges
 * into its local snapshot (mesh-store-merge.ts).
 *
 * Like the informer: read everything at one revision, then watch from the
 * next revision. etcd3 reconnects a broken watch by itself and resumes after
 * the last revision it saw (an etcd restart with its data dir loses
 * nothing). A watch etcd cancels is resumed from the revision after the last
 * event applied; if that one is cancelled too before delivering anything
 * (its start revision was compacted meanwhile), the whole prefix is read
 * again (the informer's 410 → relist). Failed reads and resumes are retried
 * after an exponential backoff, reset once a watch delivers.
 * While etcd is unreachable the last view stays in force: records age out
 * through their leases, not because this agent lost its connection.
 */
import type { MeshStore, StoreEntry } from '../../../tunnel/src/mesh-store.js';
import {
  DEFAULT_MESH_RECORD_LIMITS,
  parseMeshRecord,
  type MeshRecordLimits,
} from './mesh-store-records.js';
import {
  countRecords,
  type MeshCounts,
  type MeshEntry,
  type MeshNote,
  type MeshView,
} from './mesh-store-merge.js';
import { Backoff } from './snapshot.js';

export type MeshSourceState = 'connecting' | 'synced' | 'disconnected' | 'resyncing' | 'stopped';

export interface MeshStoreSourceOptions {
  readonly store: MeshStore;
  /** This agent's cluster: its own records are ignored (the local source is authoritative). */
  readonly cluster: string;
  readonly onChange: (view: MeshView) => void;
  /** Problems worth a log line: one per key and problem, not per event. */
  readonly onLog?: (message: string) => void;
  readonly debounceMs?: number;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly limits?: MeshRecordLimits;
  /** At most this many keys are kept (the rest are problems); default 200000. */
  readonly maxKeys?: number;
}

export interface MeshSourceStatus {
  readonly state: MeshSourceState;
  readonly revision: string;
  readonly fullReads: number;
  readonly counts: MeshCounts;
  readonly problems: number;
  readonly ignored: number;
  readonly lastError: string | null;
}

export class MeshStoreSource {
  private entries = new Map<string, MeshEntry>();
  private notes = new Map<string, MeshNote>();
  private revision = '0';
  private state: MeshSourceState = 'stopped';
  private stopWatch: (() => Promise<void>) | undefined;
  private retry: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private readonly logged = new Map<string, string>();
  private lastError: string | null = null;
  private everSynced = false;
  /** Newest revision applied: the read's, then each event's. */
  private seen = 0n;
  private version = 0;
  private counted: { version: number; counts: MeshCounts } | undefined;
  /** Whole-prefix reads done (the first one, and after every compaction). */
  fullReads = 0;

  constructor(private readonly opts: MeshStoreSourceOptions) {
    const b = opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
    this.backoff = new Backoff(b.initialMs, b.maxMs);
  }

  /** Starts reading; resolves after the first attempt (success or not). Never throws. */
  async start(): Promise<void> {
    this.state = 'connecting';
    await this.resync();
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    if (this.retry) clearTimeout(this.retry);
    if (this.debounce) clearTimeout(this.debounce);
    const s = this.stopWatch;
    this.stopWatch = undefined;
    await s?.();
  }

  private isStopped(): boolean {
    return this.state === 'stopped';
  }

  /** True once a full read succeeded. */
  get synced(): boolean {
    return this.everSynced;
  }

  view(): MeshView {
    return { entries: new Map(this.entries), notes: new Map(this.notes), revision: this.revision };
  }

  /** Current problems and ignored keys (live, not the last emitted view). */
  currentNotes(): MeshNote[] {
    return [...this.notes.values()];
  }

  status(): MeshSourceStatus {
    let problems = 0;
    let ignored = 0;
    for (const n of this.notes.values()) {
      if (n.kind === 'problem') problems++;
      else ignored++;
    }
    return {
      state: this.state,
      revision: this.revision,
      fullReads: this.fullReads,
      counts: this.counts(),
      problems,
      ignored,
      lastError: this.lastError,
    };
  }

  private counts(): MeshCounts {
    if (this.counted?.version !== this.version)
      this.counted = {
        version: this.version,
        counts: countRecords({ entries: this.entries, notes: this.notes, revision: this.revision }),
      };
    return this.counted.counts;
  }

  private async resync(): Promise<void> {
    if (this.isStopped()) return;
    const old = this.stopWatch;
    this.stopWatch = undefined;
    await old?.();
    try {
      const { revision, entries } = await this.opts.store.readAll();
      if (this.isStopped()) return;
      this.fullReads++;
      // Rebuild from the read, but keep the last good record of keys that are now bad.
      const previous = this.entries;
      this.entries = new Map();
      this.notes = new Map();
      for (const e of entries) this.put(e, previous.get(e.key));
      this.revision = revision;
      this.seen = BigInt(revision);
      this.everSynced = true;
      await this.watch(false);
      this.state = 'synced';
      this.lastError = null;
      this.emit();
    } catch (e) {
      if (this.isStopped()) return;
      this.state = this.everSynced ? 'disconnected' : 'connecting';
      this.lastError = `read failed: ${(e as Error).message.split('\n')[0]}`;
      this.opts.onLog?.(`mesh store: ${this.lastError}`);
      this.schedule(this.backoff.next(), 'read');
    }
  }

  /**
   * Watches from the revision after the last one applied. A watch that etcd
   * cancels (compaction, or a cancel while it shuts down) is first resumed
   * from there; only if that resumed watch is cancelled too before it
   * delivered anything is everything read again.
   */
  private async watch(resuming: boolean): Promise<void> {
    let delivered = false;
    let dead = false;
    // A watch that delivers something is healthy: the next failure starts the backoff afresh.
    const ok = (): void => {
      if (!delivered) this.backoff.reset();
      delivered = true;
    };
    const stop = await this.opts.store.watchFrom(String(this.seen + 1n), {
      onPut: (e) => {
        ok();
        this.advance(e.modRevision);
        this.put(e, this.entries.get(e.key));
        this.changed();
      },
      onDelete: (key, rev) => {
        ok();
        this.advance(rev);
        this.version++;
        this.entries.delete(key);
        this.notes.delete(key);
        this.logged.delete(key);
        this.changed();
      },
      onProgress: (rev) => {
        ok();
        this.revision = rev;
      },
      onConnected: () => {
        if (!this.isStopped()) this.state = 'synced';
      },
      onDisconnected: (err) => {
        if (this.isStopped()) return;
        this.state = 'disconnected';
        this.lastError = `watch disconnected: ${err.message.split('\n')[0]}`;
      },
      onError: (err) => {
        dead = true; // etcd removed it: cancelling it again would wait for an answer that never comes
        if (this.isStopped()) return;
        const why = err.message.split('\n')[0];
        if (resuming && !delivered) {
          this.state = 'resyncing';
          this.lastError = `watch cancelled again (${why}); reading everything again`;
          this.opts.onLog?.(`mesh store: ${this.lastError}`);
          this.schedule(0, 'read');
        } else {
          this.state = 'disconnected';
          this.lastError = `watch cancelled (${why}); resuming from revision ${this.seen + 1n}`;
          this.opts.onLog?.(`mesh store: ${this.lastError}`);
          this.schedule(this.backoff.next(), 'resume');
        }
      },
    });
    this.stopWatch = async () => {
      if (dead) return;
      // bounded: a cancel is answered by etcd, which may be gone
      await Promise.race([stop(), new Promise((r) => setTimeout(r, 2000).unref())]);
    };
  }

  /** The newest revision whose events were applied (the resume point is the next one). */
  private advance(rev: string): void {
    try {
      const r = BigInt(rev);
      if (r > this.seen) this.seen = r;
    } catch {
      // a revision etcd always sends; nothing to advance otherwise
    }
  }

  private async resume(): Promise<void> {
    if (this.isStopped()) return;
    const old = this.stopWatch;
    this.stopWatch = undefined;
    await old?.();
    try {
      await this.watch(true);
    } catch (e) {
      if (this.isStopped()) return;
      this.lastError = `watch failed: ${(e as Error).message.split('\n')[0]}`;
      this.schedule(this.backoff.next(), 'resume');
    }
  }

  private schedule(ms: number, what: 'read' | 'resume'): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void (what === 'read' ? this.resync() : this.resume());
    }, ms);
  }

  private put(e: StoreEntry, lastGood: MeshEntry | undefined): void {
    this.version++;
    const max = this.opts.maxKeys ?? 200_000;
    if (!this.entries.has(e.key) && this.entries.size + this.notes.size >= max) {
      this.note({ key: e.key, kind: 'problem', message: `more than ${max} keys; not read` });
      return;
    }
    if (lastGood && lastGood.modRevision === e.modRevision) {
      // The same value as before (a full re-read): no need to parse it again.
      this.entries.set(e.key, lastGood);
      this.notes.delete(e.key);
      return;
    }
    const p = parseMeshRecord(
      e.key,
      e.value,
      this.opts.cluster,
      this.opts.limits ?? DEFAULT_MESH_RECORD_LIMITS,
    );
    if (p.ok === true) {
      this.entries.set(e.key, { record: p.record, modRevision: e.modRevision });
      this.notes.delete(e.key);
      this.logged.delete(e.key);
      return;
    }
    if (p.ok === 'ignored') {
      this.entries.delete(e.key);
      this.note({ key: e.key, kind: 'ignored', message: p.reason });
      return;
    }
    // A bad value: report it; a previously good version stays in force.
    if (lastGood) this.entries.set(e.key, lastGood);
    else this.entries.delete(e.key);
    this.note({
      key: e.key,
      kind: 'problem',
      message: `${p.problem}${lastGood ? ' (the last good version stays in use)' : ' (skipped)'}`,
    });
  }

  private note(n: MeshNote): void {
    this.notes.set(n.key, n);
    if (n.kind !== 'problem' || this.logged.get(n.key) === n.message) return;
    this.logged.set(n.key, n.message);
    this.opts.onLog?.(`mesh store: ${n.key}: ${n.message}`);
  }

  private changed(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.emit();
    }, this.opts.debounceMs ?? 50);
  }

  private emit(): void {
    if (this.isStopped()) return;
    this.opts.onChange(this.view());
  }
}
