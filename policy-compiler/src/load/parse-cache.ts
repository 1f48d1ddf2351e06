/**
 * A memo of loaded files, for callers that load the same manifests again and
 * again with few of them changed (the agent reloads its whole snapshot on
 * every change). Parsing is nearly all of a load's time (10k pods: ~4 s of
 * YAML parsing, everything else well under 1 s), so an unchanged file is not
 * parsed, validated or decoded again: its steps (diagnostics and decoded
 * objects, see `loadFile`) are replayed. A hit needs the same file name, the
 * same text and the same limits; the checks across files (duplicates,
 * referenced namespaces and clusters) run on every load, so a load with the
 * cache equals a load without it, and unchanged objects are the same objects.
 * What is kept is the decoded objects and their diagnostics, not the parsed
 * YAML with its positions (several KiB per object).
 */
import type { LoaderLimits } from './located.js';
import type { FileStep } from './world.js';

interface Entry {
  readonly text: string;
  readonly limits: LoaderLimits;
  readonly steps: readonly FileStep[];
}

const sameLimits = (a: LoaderLimits, b: LoaderLimits): boolean =>
  a === b ||
  ((Object.keys(a) as (keyof LoaderLimits)[]).every((k) => a[k] === b[k]) &&
    Object.keys(a).length === Object.keys(b).length);

export class ParseCache {
  private entries = new Map<string, Entry>();
  private used = new Map<string, Entry>();
  /** Files loaded and reused since the cache was made (for tests and benchmarks). */
  readonly stats = { parsed: 0, reused: 0 };

  /** The steps of (file, text), from the memo or by calling `load`. */
  get(
    file: string,
    text: string,
    limits: LoaderLimits,
    load: () => readonly FileStep[],
  ): readonly FileStep[] {
    const e = this.entries.get(file) ?? this.used.get(file);
    if (e !== undefined && e.text === text && sameLimits(e.limits, limits)) {
      this.stats.reused++;
      this.used.set(file, e);
      return e.steps;
    }
    this.stats.parsed++;
    const steps = load();
    this.used.set(file, { text, limits, steps });
    return steps;
  }

  /** Ends one load: files it did not read are forgotten (memory stays bounded by one snapshot). */
  endLoad(): void {
    this.entries = this.used;
    this.used = new Map();
  }

  get size(): number {
    return this.entries.size;
  }
}
