/**
 * Meta or allocation with each map as a plain Map, so compiles compare with toEqual
 * (the compiler's fast paths hand out layered maps, compile/layered-map.ts).
 */
export const plainMaps = (x: object): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(x).map(([k, v]: [string, unknown]) => [
      k,
      v instanceof Object && !Array.isArray(v) && Symbol.iterator in v
        ? new Map(v as Iterable<[unknown, unknown]>)
        : v,
    ]),
  );
