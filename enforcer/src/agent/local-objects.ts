/**
 * Objects of the local source that do not belong to this agent's cluster.
 * Pure.
 *
 * Kubernetes: the API server is this cluster's, so an object whose
 * `palisade.dev/cluster` annotation names another cluster is not ours to
 * enforce, and taking it in would let anyone who can create a Pod in this
 * cluster claim another cluster's identity (labels) for its address. It is
 * left out of the world and reported (objects without the annotation are
 * this cluster's: the source adds it).
 * Directory: a world file may describe several clusters (remote endpoints are
 * needed), so objects of other clusters are kept; but an object in cluster
 * `default` while the agent is not, almost always a forgotten annotation,
 * applies to nothing here: it is kept and reported.
 */
import type { LoadResult } from '../../../policy-compiler/src/load/index.js';
import type { SourceNote } from '../api/types.js';
import { makeSnapshot, type SourceSnapshot } from '../sources/snapshot.js';

export interface ScreenResult {
  readonly snapshot: SourceSnapshot;
  /** One note per object, kind `foreign`. */
  readonly notes: readonly SourceNote[];
}

const describe = (o: LoadResult['objects'][number]): string =>
  `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`;

export function screenLocalObjects(
  snapshot: SourceSnapshot,
  loaded: LoadResult,
  cluster: string,
  mode: 'kubernetes' | 'directory',
): ScreenResult {
  const notes: SourceNote[] = [];
  const drop = new Set<string>();
  for (const o of loaded.objects) {
    // Cluster objects name a cluster; mesh-wide kinds (MeshNetworkPolicy) have none.
    if (o.cluster === null || o.kind === 'Cluster' || o.cluster === cluster) continue;
    if (mode === 'kubernetes') {
      drop.add(o.source.file);
      notes.push({
        key: o.source.file,
        kind: 'foreign',
        message: `${describe(o)}: annotation palisade.dev/cluster names cluster "${o.cluster}", but this API server is cluster "${cluster}"'s; not used`,
      });
    } else if (o.cluster === 'default') {
      notes.push({
        key: `${o.source.file}:${o.source.line}:${o.source.col}`,
        kind: 'foreign',
        message: `${describe(o)} is in cluster "default" (no palisade.dev/cluster annotation?), this agent is for cluster "${cluster}": it applies to nothing here`,
      });
    }
  }
  if (drop.size === 0) return { snapshot, notes };
  return {
    snapshot: makeSnapshot(
      snapshot.inputs.filter((i) => !drop.has(i.file)),
      [...snapshot.problems],
    ),
    notes,
  };
}
