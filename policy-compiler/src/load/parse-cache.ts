/**
 * A memo of parsed YAML per input file, for callers that load the same
 * manifests again and again with few of them changed (the agent reloads its
 * whole snapshot on every change). Parsing is nearly all of a load's time
 * (10k pods: ~4 s of YAML parsing, everything else well under 1 s), so an
 * unchanged file must not be parsed again. A hit needs the same file name,
 * the same text and the same limits; the result is what parsing would give
 * (parsed documents are never mutated by the loader), so a load with the
 * cache equals a load without it.
 */
import type { LoaderLimits, ParsedText } from './located.js';

interface Entry {
  readonly text: string;
  readonly limits: LoaderLimits;
  readonly parsed: ParsedText;
}

const sameLimits = (a: LoaderLimits, b: LoaderLimits): boolean =>
  a === b ||
  ((Object.keys(a) as (keyof LoaderLimits)[]).every((k) => a[k] === b[k]) &&
    Object.keys(a).length === Object.keys(b).length);

export class ParseCache {
  private entries = new Map<string, Entry>();
  private used = new Map<string, Entry>();
  /** Forgotten with their documents. */
  private readonly derivedOf = new WeakMap<object, Map<string, unknown>>();
  /** Parses done and reused since the cache was made (for tests and benchmarks). */
  readonly stats = { parsed: 0, reused: 0 };

  /** The parse of (file, text), from the memo or by calling `parse`. */
  get(file: string, text: string, limits: LoaderLimits, parse: () => ParsedText): ParsedText {
    const e = this.entries.get(file) ?? this.used.get(file);
    if (e !== undefined && e.text === text && sameLimits(e.limits, limits)) {
      this.stats.reused++;
      this.used.set(file, e);
      return e.parsed;
    }
    this.stats.parsed++;
    const parsed = parse();
    this.used.set(file, { text, limits, parsed });
    return parsed;
  }

  /** Ends one load: files it did not read are forgotten (memory stays bounded by one snapshot). */
  endLoad(): void {
    this.entries = this.used;
    this.used = new Map();
  }

  /**
   * `make()` once per (document, path of the object in it): what is derived
   * from a cached document alone (schema issues, the decoded object) is the
   * same on every load, and reusing the decoded object keeps unchanged
   * objects identical across loads (the incremental compiler keys on that).
   */
  derived<T>(doc: object, what: string, make: () => T): T {
    let m = this.derivedOf.get(doc);
    if (m === undefined) this.derivedOf.set(doc, (m = new Map()));
    if (m.has(what)) return m.get(what) as T;
    const v = make();
    m.set(what, v);
    return v;
  }

  get size(): number {
    return this.entries.size;
  }
}
