/** What every source produces: the manifests that make up the world, as texts. */
import { createHash } from 'node:crypto';

export interface ManifestInput {
  /** Where it came from: a path, or `kubernetes:<resource>/<namespace>/<name>`. */
  readonly file: string;
  /** YAML or JSON (JSON is valid YAML) for the loader (loadWorldFromTexts). */
  readonly text: string;
}

export interface SourceProblem {
  readonly file: string;
  readonly message: string;
}

export interface SourceSnapshot {
  /** Sorted by file. */
  readonly inputs: readonly ManifestInput[];
  /** Inputs that could not be read (too large, unreadable…); the rest still loads. */
  readonly problems: readonly SourceProblem[];
  /** Content hash of inputs and problems: equal snapshots, equal digest. */
  readonly digest: string;
}

export function makeSnapshot(
  inputs: ManifestInput[],
  problems: SourceProblem[] = [],
): SourceSnapshot {
  const sorted = [...inputs].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const probs = [...problems].sort((a, b) => (a.file < b.file ? -1 : 1));
  const h = createHash('sha256');
  for (const i of sorted) h.update(i.file).update('\0').update(i.text).update('\0');
  for (const p of probs) h.update('!').update(p.file).update('\0').update(p.message).update('\0');
  return { inputs: sorted, problems: probs, digest: h.digest('hex') };
}

/** Exponential backoff with a cap; `next()` returns the delay to wait now. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly initialMs = 500,
    private readonly maxMs = 30_000,
  ) {}
  next(): number {
    const d = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return d;
  }
  reset(): void {
    this.attempt = 0;
  }
}
