/**
 * Per-key changes of one policy table (EncodedDelta.tables.patch): which keys
 * to insert and which to delete, and whether the change may be applied key by
 * key at all. A table may be patched in place only where no packet can see a
 * half-patched identity: it inserts the entries of identities nothing referred
 * to before this compile and removes the keys of identities nothing refers to
 * after it (the datapath inserts before it changes the ipcache and endpoints,
 * and removes after). Any other change replaces the table whole (an atomic
 * swap).
 */
import type { MapEntry } from '../compiled.js';
import { compareBytes } from '../encode/codec.js';
import { LAYOUT } from '../encode/layout.js';

export interface EntryDiff {
  /** Entries to add (sorted by key bytes); no key of them is in the old table. */
  readonly insert: readonly MapEntry[];
  /** Keys to delete (sorted); all are in the old table, none in the new one. */
  readonly remove: readonly Uint8Array[];
}

export const NO_DIFF: EntryDiff = { insert: [], remove: [] };

const ID_OFFSET = LAYOUT.pal_policy_key.fields.identity_be.offset;

/** The identity of an encoded policy key (big endian in the key). */
export const keyIdentity = (k: Uint8Array): number =>
  (((k[ID_OFFSET] as number) << 24) |
    ((k[ID_OFFSET + 1] as number) << 16) |
    ((k[ID_OFFSET + 2] as number) << 8) |
    (k[ID_OFFSET + 3] as number)) >>>
  0;

// Keys sort by (prefixlen, identity, protocol, port): prefixlen is the first
// byte (little endian u32 below 256), the identity follows in big endian.
const prefixlenOf = (k: Uint8Array): number => k[0] as number;

/** First index in [lo, hi) of sorted `entries` whose key `before` does not hold for. */
export function firstIndex(
  entries: readonly MapEntry[],
  lo: number,
  hi: number,
  before: (key: Uint8Array) => boolean,
): number {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before((entries[mid] as MapEntry).key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of `key` in the sorted entries, or -(insertion point) - 1. */
export function searchEntries(entries: readonly MapEntry[], key: Uint8Array): number {
  const i = firstIndex(entries, 0, entries.length, (k) => compareBytes(k, key) < 0);
  const e = entries[i];
  return e !== undefined && compareBytes(e.key, key) === 0 ? i : -i - 1;
}

/** First index in [lo, hi) whose entry is not before (prefixlen, identity). */
const lowerBound = (
  entries: readonly MapEntry[],
  lo: number,
  hi: number,
  prefixlen: number,
  identity: number,
): number =>
  firstIndex(entries, lo, hi, (k) => {
    const p = prefixlenOf(k);
    return p < prefixlen || (p === prefixlen && keyIdentity(k) < identity);
  });

/**
 * The index ranges [lo, hi) of identity `n`'s entries in sorted `entries`:
 * one per prefix length that has any, found by binary search (a table has a
 * few distinct prefix lengths, so this is far below a scan).
 */
export function identityRanges(entries: readonly MapEntry[], n: number): [number, number][] {
  const out: [number, number][] = [];
  let i = 0;
  while (i < entries.length) {
    const p = prefixlenOf((entries[i] as MapEntry).key);
    const groupEnd = lowerBound(entries, i, entries.length, p + 1, 0);
    const lo = lowerBound(entries, i, groupEnd, p, n);
    const hi = n === 0xffffffff ? groupEnd : lowerBound(entries, lo, groupEnd, p, n + 1);
    if (hi > lo) out.push([lo, hi]);
    i = groupEnd;
  }
  return out;
}

/**
 * The key-by-key change from sorted `a` to sorted `b`, or null when it is
 * not a patch: a key whose value changes, a key inserted for an identity
 * `canInsert` refuses or removed for one `canRemove` refuses.
 */
export function entryPatch(
  a: readonly MapEntry[],
  b: readonly MapEntry[],
  canInsert: (identity: number) => boolean,
  canRemove: (identity: number) => boolean,
): EntryDiff | null {
  const insert: MapEntry[] = [];
  const remove: Uint8Array[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : compareBytes(x.key, y.key);
    if (c === 0) {
      const ok = x === y || compareBytes((x as MapEntry).value, (y as MapEntry).value) === 0;
      if (!ok) return null;
      i++;
      j++;
    } else if (c < 0) {
      const k = (x as MapEntry).key;
      if (!canRemove(keyIdentity(k))) return null;
      remove.push(k);
      i++;
    } else {
      if (!canInsert(keyIdentity((y as MapEntry).key))) return null;
      insert.push(y as MapEntry);
      j++;
    }
  }
  return { insert, remove };
}

export function sameEntries(a: readonly MapEntry[], b: readonly MapEntry[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as MapEntry;
    const y = b[i] as MapEntry;
    if (!sameBytes(x.key, y.key) || !sameBytes(x.value, y.value)) return false;
  }
  return true;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether a patch is worth it: fewer key operations than writing the table afresh. */
export const worthPatching = (d: EntryDiff, entries: number): boolean =>
  d.insert.length + d.remove.length < entries;
