/**
 * Port ranges as prefix covers: the fewest aligned power-of-two blocks whose
 * union is exactly [start, end]. A block of 2^(16-k) ports starting at a
 * multiple of its size is one policy key with port prefix length k.
 */
export interface PortPrefix {
  /** First port of the block (its low 16-k bits are zero). */
  readonly port: number;
  /** Number of leading port bits that are fixed, 0..16. */
  readonly bits: number;
}

/** Minimal exact cover of [start, end] (0 <= start <= end <= 65535). */
export function portRangeCover(start: number, end: number): PortPrefix[] {
  if (
    !Number.isInteger(start) ||
    !Number.isInteger(end) ||
    start < 0 ||
    end > 65535 ||
    start > end
  ) {
    throw new RangeError(`bad port range ${start}-${end} (allowed: 0 <= start <= end <= 65535)`);
  }
  const out: PortPrefix[] = [];
  let lo = start;
  while (lo <= end) {
    // Largest block aligned at lo that fits in [lo, end].
    let size = lo === 0 ? 65536 : lo & -lo;
    while (size > end - lo + 1) size >>>= 1;
    out.push({ port: lo, bits: 16 - Math.log2(size) });
    lo += size;
  }
  return out;
}

/** Number of blocks portRangeCover would return, without building them. */
export function portRangeCoverSize(start: number, end: number): number {
  let n = 0;
  let lo = start;
  while (lo <= end) {
    let size = lo === 0 ? 65536 : lo & -lo;
    while (size > end - lo + 1) size >>>= 1;
    n++;
    lo += size;
  }
  return n;
}
