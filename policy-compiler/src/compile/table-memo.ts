/**
 * Table entries by what they depend on (docs/compiler.md "General path").
 * A table's inputs are texts (its program, then the identity sets its rules
 * read); the key is a short hash of them, so building it costs nothing per
 * table beyond the hashes each text keeps. Every lookup compares the inputs
 * themselves (usually the same strings, so a pointer comparison), so a hash
 * collision is a miss, never a wrong table; two different inputs with one hash
 * are kept apart under their full text.
 */
import type { MapEntry } from '../compiled.js';

/** What a table's entries are a function of. */
export interface TableInputs {
  /** Short, hash-based: equal inputs give equal keys. */
  readonly fingerprint: string;
  /** The texts hashed into the fingerprint, in order. */
  readonly inputs: readonly string[];
}

interface MemoEntry {
  readonly inputs: readonly string[];
  readonly entries: readonly MapEntry[];
}

const sameInputs = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** The key of inputs whose fingerprint is taken by others: their whole text (unique). */
const exactKey = (p: TableInputs): string => `=${p.inputs.join('\u0000')}`;

export class TableMemo {
  private readonly byKey = new Map<string, MemoEntry>();

  /** The key `p` is (or would be) kept under. */
  keyOf(p: TableInputs): string {
    const e = this.byKey.get(p.fingerprint);
    return e === undefined || sameInputs(e.inputs, p.inputs) ? p.fingerprint : exactKey(p);
  }

  /** The entries of a table with these inputs, if kept. */
  get(p: TableInputs): readonly MapEntry[] | undefined {
    const e = this.byKey.get(this.keyOf(p));
    return e !== undefined && sameInputs(e.inputs, p.inputs) ? e.entries : undefined;
  }

  /** The entries kept under a key (as keyOf or set returned it). */
  entriesAt(key: string): readonly MapEntry[] | undefined {
    return this.byKey.get(key)?.entries;
  }

  /** Keeps entries for these inputs; returns the key they are kept under. */
  set(p: TableInputs, entries: readonly MapEntry[]): string {
    const key = this.keyOf(p);
    this.byKey.set(key, { inputs: p.inputs, entries });
    return key;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  delete(key: string): void {
    this.byKey.delete(key);
  }

  keys(): IterableIterator<string> {
    return this.byKey.keys();
  }

  get size(): number {
    return this.byKey.size;
  }
}

/** A 53-bit hash of a text (cyrb53), as a short string with the text's length. */
export function textHash(s: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return `${(4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36)}:${s.length.toString(36)}`;
}
