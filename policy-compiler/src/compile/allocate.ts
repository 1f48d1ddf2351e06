/**
 * Stable numbering, shared by identities, table indexes, rule cookies and
 * nodes: a key that had a number keeps it; keys that are gone free theirs;
 * new keys, in sorted order, take the lowest numbers the previous numbering
 * did not use. A number freed by this compile is not reused by it, only by
 * a later one: while the datapath applies a change, its ipcache, endpoints,
 * tables and counters are briefly part old and part new, and a number that
 * meant one thing before and another after would let a packet be judged by
 * the other identity's (or class's, or rule's) entries. The result depends
 * only on (keys now, previous numbering), so a full compile given the
 * previous numbering and an incremental one agree number for number.
 */
export type Numbering = ReadonlyMap<string, number>;

export function allocateNumbers(
  keys: Iterable<string>,
  previous: Numbering | undefined,
  first: number,
): Map<string, number> {
  const out = new Map<string, number>();
  const fresh: string[] = [];
  const used: number[] = [];
  for (const k of keys) {
    if (out.has(k)) continue;
    const n = previous?.get(k);
    if (n !== undefined) out.set(k, n);
    else {
      out.set(k, -1);
      fresh.push(k);
    }
  }
  if (fresh.length === 0) return out;
  // Every number the previous numbering used is taken: kept ones and those freed now.
  if (previous !== undefined) for (const n of previous.values()) used.push(n);
  fresh.sort();
  used.sort((a, b) => a - b);
  let candidate = first;
  let u = 0;
  for (const k of fresh) {
    while (u < used.length && (used[u] as number) < candidate) u++;
    while (u < used.length && used[u] === candidate) {
      candidate++;
      u++;
    }
    out.set(k, candidate++);
  }
  return out;
}
