/**
 * The mesh store's records merged into the local source's snapshot, so the
 * reconciler sees one world (same SourceSnapshot → loadWorldFromTexts path as
 * the directory and Kubernetes sources). Pure.
 *
 * Precedence: what the local source declares wins. A remote Cluster, Pod,
 * Namespace or MeshNetworkPolicy that the local source also has (e.g. a
 * directory world that already describes cluster west) is left out and
 * reported as `shadowed`, so the loader never sees a duplicate.
 * Namespaces of remote pods are synthesised from the endpoints' namespace
 * labels (the record with the highest modRevision wins while they disagree).
 */
import type { World } from '../../../policy-compiler/src/model/world.js';
import type { MeshRecord } from './mesh-store-records.js';
import { namespaceDocument } from './mesh-store-records.js';
import { makeSnapshot, type ManifestInput, type SourceSnapshot } from './snapshot.js';

export interface MeshNote {
  readonly key: string;
  /** problem: unreadable/invalid (skipped, last good kept); ignored: not for us; shadowed: the local source has it. */
  readonly kind: 'problem' | 'ignored' | 'shadowed';
  readonly message: string;
}

export interface MeshEntry {
  readonly record: MeshRecord;
  /** etcd mod revision, as a decimal string. */
  readonly modRevision: string;
}

export interface MeshView {
  /** Last good record per key. */
  readonly entries: ReadonlyMap<string, MeshEntry>;
  /** Problems and ignored keys, by key. */
  readonly notes: ReadonlyMap<string, MeshNote>;
  readonly revision: string;
}

export interface MeshCounts {
  readonly clusters: number;
  /** Clusters that publish a gateway endpoint (our tunnel peers). */
  readonly gateways: number;
  readonly endpoints: number;
  readonly policies: number;
}

export function countRecords(view: MeshView): MeshCounts {
  let clusters = 0;
  let gateways = 0;
  let endpoints = 0;
  let policies = 0;
  for (const { record: r } of view.entries.values()) {
    if (r.kind === 'cluster') {
      clusters++;
      if (r.hasGateway) gateways++;
    } else if (r.kind === 'endpoint') endpoints++;
    else policies++;
  }
  return { clusters, gateways, endpoints, policies };
}

const revNum = (r: string): bigint => {
  try {
    return BigInt(r);
  } catch {
    return 0n;
  }
};

/** The view's documents minus what the local world declares; the left-out ones as notes. */
export function meshInputs(
  view: MeshView,
  local: World,
): { inputs: ManifestInput[]; shadowed: MeshNote[] } {
  const clusters = new Set(local.clusters.filter((c) => c.declared).map((c) => c.name));
  const pods = new Set(local.pods.map((p) => `${p.cluster}/${p.namespace}/${p.name}`));
  const namespaces = new Set(
    local.namespaces.filter((n) => n.declared).map((n) => `${n.cluster}/${n.name}`),
  );
  const policies = new Set(
    local.clusterPolicies.filter((p) => p.kind === 'MeshNetworkPolicy').map((p) => p.name),
  );
  const inputs: ManifestInput[] = [];
  const shadowed: MeshNote[] = [];
  const nsLabels = new Map<string, { rev: bigint; labels: Readonly<Record<string, string>> }>();
  const shadow = (key: string, what: string): void => {
    shadowed.push({
      key,
      kind: 'shadowed',
      message: `${what} is also in the local source, which wins`,
    });
  };
  for (const [key, { record: r, modRevision }] of [...view.entries].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  )) {
    const file = `etcd:${key}`;
    if (r.kind === 'cluster') {
      if (clusters.has(r.cluster)) shadow(key, `Cluster ${r.cluster}`);
      else inputs.push({ file, text: r.text });
    } else if (r.kind === 'policy') {
      if (policies.has(r.name)) shadow(key, `MeshNetworkPolicy ${r.name}`);
      else inputs.push({ file, text: r.text });
    } else {
      const id = `${r.cluster}/${r.namespace}/${r.name}`;
      if (pods.has(id)) {
        shadow(key, `Pod ${id}`);
        continue;
      }
      inputs.push({ file, text: r.text });
      const nsKey = `${r.cluster}/${r.namespace}`;
      const rev = revNum(modRevision);
      const have = nsLabels.get(nsKey);
      if (!have || rev > have.rev) nsLabels.set(nsKey, { rev, labels: r.namespaceLabels });
    }
  }
  for (const [nsKey, { labels }] of [...nsLabels].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (namespaces.has(nsKey)) continue; // declared locally: the local labels are used
    const [cluster, name] = nsKey.split('/') as [string, string];
    inputs.push({
      file: `etcd:/palisade/clusters/${cluster}/endpoints/${name}`,
      text: JSON.stringify(namespaceDocument(cluster, name, labels)),
    });
  }
  return { inputs, shadowed };
}

/** Local snapshot + mesh documents → the snapshot the reconciler gets. */
export function mergeSnapshots(
  local: SourceSnapshot,
  mesh: readonly ManifestInput[],
): SourceSnapshot {
  if (mesh.length === 0) return local;
  return makeSnapshot([...local.inputs, ...mesh], [...local.problems]);
}
