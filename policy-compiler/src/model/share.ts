/**
 * Structural sharing between two loads of a world. A source that reloads
 * every manifest on each change (the agent's directory watcher, the
 * Kubernetes snapshot) produces new objects for things that did not change;
 * the incremental compiler recognises "unchanged" by object identity (its
 * pod path needs the same policy, namespace, node and cluster lists and the
 * same unchanged pod objects). `shareUnchanged` gives back `next` with every
 * object that equals one in `prev` replaced by `prev`'s, and every list that
 * equals `prev`'s list replaced by that list, so identity means equality.
 */
import type { World } from './world.js';

/** Each object's canonical text, computed once in its life (worlds are immutable). */
const texts = new WeakMap<object, string>();

function textOf(o: object): string {
  let t = texts.get(o);
  if (t === undefined) {
    // World objects are plain JSON data built by one loader, so key order is
    // deterministic and JSON text equality is structural equality.
    t = JSON.stringify(o);
    texts.set(o, t);
  }
  return t;
}

type Keyed = {
  readonly cluster?: string | null;
  readonly namespace?: string;
  readonly name: string;
};

const identityOf = (o: Keyed): string =>
  `${o.cluster ?? ''}\u0000${o.namespace ?? ''}\u0000${o.name}\u0000${(o as { kind?: string }).kind ?? ''}`;

function shareList<T extends object & Keyed>(prev: readonly T[], next: readonly T[]): readonly T[] {
  // Lists are sorted by identity, so most objects are found at their own index
  // (often already the same object, from a parse cache): the map is built only
  // for the objects that are not.
  let byId: Map<string, T> | undefined;
  let same = prev.length === next.length;
  const out: T[] = new Array<T>(next.length);
  for (let i = 0; i < next.length; i++) {
    const n = next[i]!;
    const atIndex = prev[i];
    let keep = n;
    if (atIndex === n) keep = atIndex;
    else if (atIndex !== undefined && identityOf(atIndex) === identityOf(n)) {
      if (textOf(atIndex) === textOf(n)) keep = atIndex;
    } else {
      if (byId === undefined) byId = new Map(prev.map((p) => [identityOf(p), p]));
      const p = byId.get(identityOf(n));
      if (p !== undefined && textOf(p) === textOf(n)) keep = p;
    }
    out[i] = keep;
    if (same && atIndex !== keep) same = false;
  }
  return same ? prev : out;
}

export function shareUnchanged(prev: World | undefined, next: World): World {
  if (prev === undefined || prev === next) return next;
  const shared: World = {
    clusters: shareList(prev.clusters, next.clusters),
    namespaces: shareList(prev.namespaces, next.namespaces),
    pods: shareList(prev.pods, next.pods),
    nodes: shareList(prev.nodes, next.nodes),
    networkPolicies: shareList(prev.networkPolicies, next.networkPolicies),
    clusterPolicies: shareList(prev.clusterPolicies, next.clusterPolicies),
  };
  const allSame = (Object.keys(shared) as (keyof World)[]).every((k) => shared[k] === prev[k]);
  return allSame ? prev : shared;
}
