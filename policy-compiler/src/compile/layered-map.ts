/**
 * A read-only map that is a base map plus a small layer of changes, so a
 * fast recompile can hand out "the previous map with these few entries
 * changed" without copying every entry (the endpoint-address map and the
 * identity numbering have one entry per pod or identity). The layer is
 * copied on each change and folded into a fresh base once it outgrows
 * FOLD_AT, so each change costs O(layer) amortized plus O(size / FOLD_AT).
 * Values are never mutated: a map handed out stays as it was.
 *
 * Iteration gives the base's entries (minus those changed or removed) and
 * then the layer's; callers that need compile()'s insertion order must not
 * use one (the compiler's own consumers read these maps by key).
 */
const GONE: unique symbol = Symbol('gone');

/** Layer size at which it is folded into a new base. */
export const FOLD_AT = 512;

export class LayeredMap<K, V> implements ReadonlyMap<K, V> {
  private constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly layer: ReadonlyMap<K, V | typeof GONE>,
    readonly size: number,
  ) {}

  /** `m` with `set` entries set and `remove` keys removed (m itself is unchanged). */
  static update<K, V>(
    m: ReadonlyMap<K, V>,
    set: Iterable<readonly [K, V]>,
    remove: Iterable<K> = [],
  ): ReadonlyMap<K, V> {
    const base = m instanceof LayeredMap ? (m.base as ReadonlyMap<K, V>) : m;
    const layer = new Map<K, V | typeof GONE>(
      m instanceof LayeredMap ? (m.layer as ReadonlyMap<K, V | typeof GONE>) : [],
    );
    let size = m.size;
    const present = (k: K): boolean => (layer.has(k) ? layer.get(k) !== GONE : base.has(k));
    for (const k of remove) {
      if (!present(k)) continue;
      if (base.has(k)) layer.set(k, GONE);
      else layer.delete(k);
      size--;
    }
    for (const [k, v] of set) {
      if (!present(k)) size++;
      layer.set(k, v);
    }
    const out = new LayeredMap<K, V>(base, layer, size);
    return layer.size > FOLD_AT ? new Map(out) : out;
  }

  get(k: K): V | undefined {
    const v = this.layer.get(k);
    if (v !== undefined) return v === GONE ? undefined : v;
    return this.layer.has(k) ? (v as V) : this.base.get(k);
  }

  has(k: K): boolean {
    if (this.layer.has(k)) return this.layer.get(k) !== GONE;
    return this.base.has(k);
  }

  *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.base) if (!this.layer.has(k)) yield [k, v];
    for (const [k, v] of this.layer) if (v !== GONE) yield [k, v];
  }

  *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(f: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    for (const [k, v] of this.entries()) f(v, k, this);
  }
}
