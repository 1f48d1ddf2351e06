/**
 * Dependencies between the parts of a compile, for the fast recompile paths
 * (compile/policy-changes.ts, compile/pod-changes.ts): which matcher sets and
 * named-target sets each table reads, and the tables reading each set. A fast
 * path that changes a set, a class's program or the classes in use rebuilds
 * exactly the tables that depend on them (`TableUpdate`), with compile()'s
 * own formulas (planTable, the same fingerprints and the same memo), so the
 * result stays byte-identical to a full compile.
 */
import type { CompiledEndpoint, CompiledTable, MapEntry, TablePatch } from '../compiled.js';
import type { IdentityInfo, IdentityKind } from './identities.js';
import type { CRule, PeerMatcher, SubjectClass } from './program.js';
import { planTable, type KeyCache, type SetTextCache, type TemplateCache } from './tables.js';
import type { Numbering } from './allocate.js';
import type { TableMeta } from './compile.js';
import { LayeredMap } from './layered-map.js';
import type { TableInputs, TableMemo } from './table-memo.js';
import {
  entryPatch,
  keyIdentity,
  NO_DIFF,
  sameBytes,
  sameEntries,
  searchEntries,
  worthPatching,
  type EntryDiff,
} from './table-patch.js';

export { sameBytes, sameEntries, searchEntries };

/** A peer matcher's identity set, for one subject cluster. */
export interface MatchEntry {
  readonly m: PeerMatcher;
  readonly cluster: string;
  readonly set: Set<number>;
}

/** The pod identities an egress rule with named ports is also represented under. */
export interface NamedEntry {
  readonly cluster: string;
  readonly names: ReadonlySet<string>;
  readonly peers: readonly PeerMatcher[] | null;
  readonly set: Set<number>;
}

/** What a compile knows of one table: its class, fingerprint and the sets it reads. */
export interface TableRecord {
  readonly cls: SubjectClass;
  readonly fp: string;
  readonly matchers: readonly string[];
  readonly named: readonly string[];
}

/**
 * A key text per (immutable object, cluster), built once: matcher and
 * named-set keys are looked up per table and rule, building them each time
 * was a string per lookup.
 */
function perCluster<T extends object>(
  make: (x: T, cluster: string) => string,
): (x: T, cluster: string) => string {
  const cache = new WeakMap<T, Map<string, string>>();
  return (x, cluster) => {
    let byCluster = cache.get(x);
    if (byCluster === undefined) cache.set(x, (byCluster = new Map()));
    let k = byCluster.get(cluster);
    if (k === undefined) byCluster.set(cluster, (k = make(x, cluster)));
    return k;
  };
}

const clusterMatcherKey = perCluster<PeerMatcher>((m, cluster) => `${cluster}\u0000${m.key}`);

export const matcherKey = (m: PeerMatcher, cluster: string): string =>
  m.subjectCluster ? clusterMatcherKey(m, cluster) : m.key;

export function namedNames(r: CRule): Set<string> {
  const names = new Set<string>();
  if (r.ports !== 'all') for (const pm of r.ports) if (pm.kind === 'named') names.add(pm.name);
  return names;
}

export const namedKey = perCluster<CRule>((r, cluster) => {
  const peersKey = r.peers === null ? '*' : r.peers.map((m) => m.key).join('\u0001');
  return `${cluster}\u0000${peersKey}\u0000${[...namedNames(r)].sort().join(',')}`;
});

/** Whether a named-target set includes pod identity `id` (compile()'s formula). */
export function namedMatches(e: NamedEntry, id: IdentityInfo): boolean {
  if (id.kind !== 'pod') return false;
  if (!id.ports.some((cp) => cp.name !== null && e.names.has(cp.name))) return false;
  return e.peers === null || e.peers.some((m) => m.matchPod(id, e.cluster));
}

/** Whether a matcher set includes identity `id` (compile()'s formula). */
export const matcherMatches = (e: MatchEntry, id: IdentityInfo): boolean =>
  e.m.kind !== 'never' && id.kind === e.m.kind && e.m.match(id, e.cluster);

/**
 * The numbering allocateNumbers() gives for (previous keys − removed + added)
 * given `prev`: kept keys keep their numbers, added keys (not in prev), in
 * sorted order, take the lowest numbers prev did not use (a number freed now
 * is not reused now: allocate.ts). Returns `prev` itself when nothing is
 * removed or added.
 */
export function renumber(
  prev: Numbering,
  removed: readonly string[],
  added: readonly string[],
  first: number,
  /** Whether prev uses a number (default: computed from prev). */
  kept?: (n: number) => boolean,
): Numbering {
  if (removed.length === 0 && added.length === 0) return prev;
  let taken = kept;
  if (taken === undefined && added.length > 0) {
    // O(numbers in use): only when a key needs a number (a revision with the same rule keys does not).
    const used = new Set<number>(prev.values());
    taken = (n) => used.has(n);
  }
  const assigned: [string, number][] = [];
  let candidate = first;
  for (const k of [...added].sort()) {
    while ((taken as (n: number) => boolean)(candidate)) candidate++;
    assigned.push([k, candidate++]);
  }
  // A layer over prev, not a copy: the numbering has one entry per identity.
  return LayeredMap.update(prev, assigned, removed);
}

/**
 * The dependency state of the newest compile. Mutable, owned by the newest
 * state (like PodIndex): fast paths compute everything first and commit only
 * on success, so a fallback leaves it as it was.
 */
export interface DepIndex {
  readonly tables: Map<number, TableRecord>;
  readonly matchers: Map<string, MatchEntry>;
  readonly named: Map<string, NamedEntry>;
  /** Matcher key → tables reading it. */
  readonly readers: Map<string, Set<number>>;
  /** Named key → tables reading it. */
  readonly namedReaders: Map<string, Set<number>>;
  /** Fingerprint → tables with it (the memo keeps the fingerprints in use). */
  readonly fpCount: Map<string, number>;
}

export function buildDepIndex(
  tables: ReadonlyMap<number, TableRecord>,
  matchers: ReadonlyMap<string, MatchEntry>,
  named: ReadonlyMap<string, NamedEntry>,
): DepIndex {
  const dep: DepIndex = {
    tables: new Map(tables),
    matchers: new Map(matchers),
    named: new Map(named),
    readers: new Map(),
    namedReaders: new Map(),
    fpCount: new Map(),
  };
  for (const [t, rec] of tables) addReader(dep, t, rec);
  return dep;
}

function addTo(m: Map<string, Set<number>>, k: string, t: number): void {
  let s = m.get(k);
  if (s === undefined) m.set(k, (s = new Set()));
  s.add(t);
}

function addReader(dep: DepIndex, t: number, rec: TableRecord): void {
  for (const k of rec.matchers) addTo(dep.readers, k, t);
  for (const k of rec.named) addTo(dep.namedReaders, k, t);
  dep.fpCount.set(rec.fp, (dep.fpCount.get(rec.fp) ?? 0) + 1);
}

/** Drops table t's reads; returns fingerprints no table has any more. */
function dropReader(dep: DepIndex, t: number, rec: TableRecord, goneFps: string[]): void {
  for (const k of rec.matchers) dep.readers.get(k)?.delete(t);
  for (const k of rec.named) dep.namedReaders.get(k)?.delete(t);
  dropFingerprint(dep, rec.fp, goneFps);
}

function dropFingerprint(dep: DepIndex, fp: string, goneFps: string[]): void {
  const c = (dep.fpCount.get(fp) ?? 0) - 1;
  if (c <= 0) {
    dep.fpCount.delete(fp);
    goneFps.push(fp);
  } else dep.fpCount.set(fp, c);
}

export interface RebuiltTable {
  readonly table: number;
  readonly rec: TableRecord;
  readonly entries: CompiledTable['entries'];
  /** Set when the table was patched and the change may be applied key by key. */
  readonly patch?: EntryDiff;
  /** What its entries are a function of (for the memo). */
  readonly plan: TableInputs;
}

/**
 * One fast-path update of tables: replans the given tables against the
 * current sets (pending ones first), then commits. Nothing is changed before
 * commit().
 */
export class TableUpdate {
  /** Matcher / named sets this update replaces or adds (copy on write). */
  readonly pendingMatchers = new Map<string, MatchEntry>();
  readonly pendingNamed = new Map<string, NamedEntry>();
  readonly rebuilt: RebuiltTable[] = [];
  private readonly templateCache: TemplateCache = new Map();
  private sorted: Map<string, IdentityInfo[]> | null = null;
  /**
   * Identity numbers in use only before / only after this update
   * (identitiesChanged; disjoint: a number freed now is not reused now, allocate.ts).
   */
  private readonly onlyGone = new Set<number>();
  private readonly onlyAdded = new Set<number>();
  /** The identities whose keys a table may lose or gain in place (table-patch.ts). */
  readonly patchable: Patchable = {
    canInsert: (n) => this.onlyAdded.has(n),
    canRemove: (n) => this.onlyGone.has(n),
  };
  constructor(
    private readonly dep: DepIndex,
    private readonly memo: TableMemo,
    private readonly byNumber: ReadonlyMap<number, IdentityInfo>,
    private readonly setTexts: SetTextCache,
    private readonly keyCache: KeyCache,
  ) {}

  private byKind(kind: IdentityKind | string): readonly IdentityInfo[] {
    if (this.sorted === null) {
      const sorted = new Map<string, IdentityInfo[]>();
      this.sorted = sorted;
      const push = (k: string, id: IdentityInfo): void => {
        const l = sorted.get(k);
        if (l === undefined) sorted.set(k, [id]);
        else l.push(id);
      };
      for (const id of [...this.byNumber.values()].sort((a, b) => a.number - b.number)) {
        push(id.kind, id);
        if (id.kind === 'pod') push(`pod:${id.cluster}/${id.namespace}`, id);
      }
    }
    return this.sorted.get(kind) ?? [];
  }

  /** The identities a matcher can match (its kind; its namespace when scoped). */
  private candidates(m: PeerMatcher): readonly IdentityInfo[] {
    return m.scope === undefined
      ? this.byKind(m.kind)
      : this.byKind(`pod:${m.scope.cluster}/${m.scope.namespace}`);
  }

  matcher(k: string): MatchEntry | undefined {
    return this.pendingMatchers.get(k) ?? this.dep.matchers.get(k);
  }

  namedEntry(k: string): NamedEntry | undefined {
    return this.pendingNamed.get(k) ?? this.dep.named.get(k);
  }

  /**
   * Identities vanished (numbers) and appeared (with their new numbers):
   * every matcher and named-target set that loses or gains one becomes
   * pending (copy on write). Returns the tables reading a changed set.
   */
  identitiesChanged(gone: readonly number[], added: readonly IdentityInfo[]): Set<number> {
    const dirty = new Set<number>();
    if (gone.length + added.length === 0) return dirty;
    for (const n of gone) this.onlyGone.add(n);
    for (const i of added) this.onlyAdded.add(i.number);
    const dep = this.dep;
    for (const [k, e] of dep.matchers) {
      let set = e.set;
      const copy = (): Set<number> => (set === e.set ? (set = new Set(e.set)) : set);
      for (const n of gone) if (set.has(n)) copy().delete(n);
      for (const info of added) if (matcherMatches(e, info)) copy().add(info.number);
      if (set === e.set) continue;
      this.pendingMatchers.set(k, { ...e, set });
      for (const t of dep.readers.get(k) ?? []) dirty.add(t);
    }
    if (!added.some((i) => i.kind === 'pod') && gone.length === 0) return dirty;
    for (const [k, e] of dep.named) {
      let set = e.set;
      const copy = (): Set<number> => (set === e.set ? (set = new Set(e.set)) : set);
      for (const n of gone) if (set.has(n)) copy().delete(n);
      for (const info of added) if (namedMatches(e, info)) copy().add(info.number);
      if (set === e.set) continue;
      this.pendingNamed.set(k, { ...e, set });
      for (const t of dep.namedReaders.get(k) ?? []) dirty.add(t);
    }
    return dirty;
  }

  /** Plans (and builds unless memoized) table `table` for class `cls`. */
  rebuild(table: number, cls: SubjectClass): RebuiltTable {
    return this.make(table, cls, null);
  }

  /**
   * Table `table`, whose class and program are as they were, after only the
   * identities in `changed` joined or left the sets it reads: its previous
   * entries patched for those identities (unless memoized).
   */
  patch(table: number, cls: SubjectClass, changed: ReadonlySet<number>): RebuiltTable {
    return this.make(table, cls, changed);
  }

  private make(
    table: number,
    cls: SubjectClass,
    changed: ReadonlySet<number> | null,
  ): RebuiltTable {
    const cluster = cls.program.cluster;
    const usedMatchers = new Set<string>();
    const usedNamed = new Set<string>();
    const plan = planTable({
      program: cls.program,
      byNumber: this.byNumber,
      templateCache: this.templateCache,
      setTextCache: this.setTexts,
      keyCache: this.keyCache,
      matched: (m) => {
        const k = matcherKey(m, cluster);
        usedMatchers.add(k);
        let e = this.matcher(k);
        if (e === undefined) {
          const set = new Set<number>();
          if (m.kind !== 'never')
            for (const id of this.candidates(m)) if (m.match(id, cluster)) set.add(id.number);
          e = { m, cluster, set };
          this.pendingMatchers.set(k, e);
        }
        return e.set;
      },
      namedTargets: (r) => {
        const k = namedKey(r, cluster);
        usedNamed.add(k);
        let e = this.namedEntry(k);
        if (e === undefined) {
          e = { cluster, names: namedNames(r), peers: r.peers, set: new Set() };
          for (const id of this.byKind('pod')) if (namedMatches(e, id)) e.set.add(id.number);
          this.pendingNamed.set(k, e);
        }
        return e.set;
      },
    });
    let entries = this.memo.get(plan);
    let patch: EntryDiff | undefined;
    if (entries === undefined) {
      const prevFp = changed === null ? undefined : this.dep.tables.get(table)?.fp;
      const old = prevFp === undefined ? undefined : this.memo.entriesAt(prevFp);
      if (old !== undefined && changed !== null) {
        const p = plan.patch(old, changed);
        entries = p.entries;
        const d = p.diff;
        if (
          d !== null &&
          d.insert.every((e) => this.onlyAdded.has(keyIdentity(e.key))) &&
          d.remove.every((k) => this.onlyGone.has(keyIdentity(k)))
        )
          patch = d;
      } else entries = plan.build().entries;
    }
    // Same class, same program: it reads the same sets (keep the arrays, commit sees it).
    const prev = this.dep.tables.get(table);
    const same = prev !== undefined && prev.cls === cls;
    const rec = {
      cls,
      fp: plan.fingerprint,
      matchers: same ? prev.matchers : [...usedMatchers],
      named: same ? prev.named : [...usedNamed],
    };
    const out: RebuiltTable =
      patch === undefined ? { table, rec, entries, plan } : { table, rec, entries, plan, patch };
    this.rebuilt.push(out);
    return out;
  }

  /** Applies the update to the index and the memo (tables in `removed` are gone). */
  commit(removed: Iterable<number>): void {
    const dep = this.dep;
    const goneFps: string[] = [];
    // Sets whose readers may have dropped to none (the only ones to check below).
    const touched = new Set<string>(this.pendingMatchers.keys());
    const touchedNamed = new Set<string>(this.pendingNamed.keys());
    const drop = (t: number): void => {
      const old = dep.tables.get(t);
      if (old === undefined) return;
      for (const k of old.matchers) touched.add(k);
      for (const k of old.named) touchedNamed.add(k);
      dropReader(dep, t, old, goneFps);
    };
    for (const [k, e] of this.pendingMatchers) dep.matchers.set(k, e);
    for (const [k, e] of this.pendingNamed) dep.named.set(k, e);
    for (const t of removed) {
      drop(t);
      dep.tables.delete(t);
    }
    for (const r of this.rebuilt) {
      // The key the memo keeps the entries under (the fingerprint, unless another table's inputs hold it).
      const fp = this.memo.set(r.plan, r.entries);
      const rec = fp === r.rec.fp ? r.rec : { ...r.rec, fp };
      const old = dep.tables.get(r.table);
      dep.tables.set(r.table, rec);
      if (old !== undefined && old.matchers === rec.matchers && old.named === rec.named) {
        // A patched table reads the same sets: only its fingerprint moves.
        if (old.fp !== rec.fp) {
          dropFingerprint(dep, old.fp, goneFps);
          dep.fpCount.set(rec.fp, (dep.fpCount.get(rec.fp) ?? 0) + 1);
        }
        continue;
      }
      drop(r.table);
      addReader(dep, r.table, rec);
    }
    for (const fp of goneFps) if (!dep.fpCount.has(fp)) this.memo.delete(fp);
    // Sets no table reads any more are dropped (as compile() keeps only those it used).
    for (const k of touched)
      if ((dep.readers.get(k)?.size ?? 0) === 0) {
        dep.readers.delete(k);
        dep.matchers.delete(k);
      }
    for (const k of touchedNamed)
      if ((dep.namedReaders.get(k)?.size ?? 0) === 0) {
        dep.namedReaders.delete(k);
        dep.named.delete(k);
      }
  }
}

/** Sets key → value in the sorted `entries`; pushes the entry to `changed` if it is new or different. */
export function upsertSorted(
  entries: MapEntry[],
  key: Uint8Array,
  value: Uint8Array,
  changed: MapEntry[],
): void {
  const i = searchEntries(entries, key);
  if (i >= 0) {
    const old = entries[i] as MapEntry;
    if (sameBytes(old.value, value)) return;
    const e = { key: old.key, value };
    entries[i] = e;
    changed.push(e);
  } else {
    const e = { key, value };
    entries.splice(-i - 1, 0, e);
    changed.push(e);
  }
}

export const sameEndpoint = (a: CompiledEndpoint, b: CompiledEndpoint): boolean =>
  a.identity === b.identity &&
  a.egressTable === b.egressTable &&
  a.ingressTable === b.ingressTable &&
  a.flags === b.flags &&
  a.nodeId === b.nodeId;

/** Pods per subject class after an update: the index's counts plus the update's changes. */
export interface ClassMembers {
  readonly before: ReadonlyMap<string, number>;
  readonly delta: ReadonlyMap<string, number>;
}

export const membersAfter = (c: ClassMembers, classKey: string): number =>
  (c.before.get(classKey) ?? 0) + (c.delta.get(classKey) ?? 0);

/** The classes that gained or lost pods, by their previous table number → their count now. */
export function changedMembers(c: ClassMembers, tables: Numbering): Map<number, number> {
  const out = new Map<number, number>();
  for (const [k, d] of c.delta) {
    const t = tables.get(k);
    if (d !== 0 && t !== undefined) out.set(t, membersAfter(c, k));
  }
  return out;
}

/** Equal metadata (isolatedBy compared as the program's own array). */
const sameMeta = (a: TableMeta, b: TableMeta): boolean =>
  a.table === b.table &&
  a.subject === b.subject &&
  a.members === b.members &&
  a.direction === b.direction &&
  a.cluster === b.cluster &&
  a.hasAudit === b.hasAudit &&
  a.isolatedBy === b.isolatedBy;

/** The side metadata of a rebuilt table, its class having `members` pods now. */
function rebuiltTableMeta(r: RebuiltTable, members: number): TableMeta {
  const p = r.rec.cls.program;
  return {
    table: r.table,
    direction: p.direction,
    cluster: p.cluster,
    subject: r.rec.cls.key,
    isolatedBy: p.isolatedBy,
    hasAudit: p.hasAudit,
    members,
  };
}

/**
 * The tables array, table metadata and table delta after an update:
 * `rebuilt` tables replace (or add) theirs, `removed` ones go, every other
 * table keeps its entries; tables whose class gained or lost pods (`members`,
 * classes numbered by `numbers`) get the new count. A changed table that only
 * gained or lost identities `patchable` allows becomes a patch, any other
 * changed table is replaced whole. The tables array comes out in table
 * order, as compile() builds it; the metadata is a layer over the old.
 */
export function assembleTables(
  oldTables: readonly CompiledTable[],
  oldMeta: ReadonlyMap<number, TableMeta>,
  rebuilt: readonly RebuiltTable[],
  removed: ReadonlySet<number>,
  members: ClassMembers,
  numbers: Numbering,
  patchable: Patchable,
): {
  tables: CompiledTable[];
  meta: ReadonlyMap<number, TableMeta>;
  replace: CompiledTable[];
  patch: TablePatch[];
  remove: number[];
  policyEntries: number;
  maxEntries: number;
} {
  const byTable = new Map<number, RebuiltTable>(rebuilt.map((r) => [r.table, r]));
  const tables: CompiledTable[] = [];
  const metaChanges: (readonly [number, TableMeta])[] = [];
  const metaOf = (r: RebuiltTable): TableMeta =>
    rebuiltTableMeta(r, membersAfter(members, r.rec.cls.key));
  const replace: CompiledTable[] = [];
  const patch: TablePatch[] = [];
  const remove: number[] = [];
  let policyEntries = 0;
  let maxEntries = 0;
  const push = (t: CompiledTable): void => {
    tables.push(t);
    policyEntries += t.entries.length;
    if (t.entries.length > maxEntries) maxEntries = t.entries.length;
  };
  // New tables: their numbers were free before (a number freed now is not reused now, allocate.ts).
  const fresh = rebuilt.filter((r) => !oldMeta.has(r.table)).sort((a, b) => a.table - b.table);
  let f = 0;
  const addFresh = (upTo: number): void => {
    while (f < fresh.length && (fresh[f] as RebuiltTable).table < upTo) {
      const r = fresh[f++] as RebuiltTable;
      const t = { table: r.table, entries: r.entries };
      push(t);
      metaChanges.push([r.table, metaOf(r)]);
      replace.push(t);
    }
  };
  /** Old table `old` now with `r`'s entries: kept, patched or replaced. */
  const changed = (old: CompiledTable, r: RebuiltTable): void => {
    const diff =
      r.patch ??
      (sameEntries(old.entries, r.entries)
        ? NO_DIFF
        : entryPatch(old.entries, r.entries, patchable.canInsert, patchable.canRemove));
    if (diff !== null && diff.insert.length + diff.remove.length === 0) {
      push(old);
      return;
    }
    const t = { table: r.table, entries: r.entries };
    push(t);
    if (diff !== null && worthPatching(diff, t.entries.length))
      patch.push({ table: t, insert: diff.insert, remove: diff.remove });
    else replace.push(t);
  };
  for (const old of oldTables) {
    addFresh(old.table);
    const r = byTable.get(old.table);
    if (removed.has(old.table)) {
      remove.push(old.table);
      continue;
    }
    if (r !== undefined) {
      const m = metaOf(r);
      const was = oldMeta.get(old.table);
      if (was === undefined || !sameMeta(was, m)) metaChanges.push([r.table, m]);
      changed(old, r);
      continue;
    }
    push(old);
  }
  addFresh(Infinity);
  for (const [t, n] of changedMembers(members, numbers)) {
    if (byTable.has(t) || removed.has(t)) continue;
    const m = oldMeta.get(t);
    if (m !== undefined && m.members !== n) metaChanges.push([t, { ...m, members: n }]);
  }
  const meta = LayeredMap.update(oldMeta, metaChanges, remove);
  return { tables, meta, replace, patch, remove, policyEntries, maxEntries };
}

/** Which identities a table may gain or lose key by key (see table-patch.ts). */
export interface Patchable {
  readonly canInsert: (identity: number) => boolean;
  readonly canRemove: (identity: number) => boolean;
}
