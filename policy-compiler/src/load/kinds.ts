/**
 * The kinds the loader knows: which apiVersion serves each, its scope and its
 * schema. Our own kinds take their schema from crds/ (via the generated
 * module); upstream kinds from the schemas authored in schema/.
 */
import { checkSelector, objectMeta } from './schema/common.js';
import { NAMESPACE, NETWORK_POLICY, NODE, POD } from './schema/core.js';
import { CRD_SCHEMAS } from './schema/crd-schemas.generated.js';
import {
  ADMIN_NETWORK_POLICY,
  BASELINE_ADMIN_NETWORK_POLICY,
  CLUSTER_NETWORK_POLICY,
} from './schema/network-policy-api.js';
import type { Schema } from './schema/types.js';

export type KindName =
  | 'Namespace'
  | 'Pod'
  | 'Node'
  | 'Cluster'
  | 'NetworkPolicy'
  | 'ClusterNetworkPolicy'
  | 'AdminNetworkPolicy'
  | 'BaselineAdminNetworkPolicy'
  | 'MeshNetworkPolicy';

export interface KindInfo {
  readonly kind: KindName;
  readonly apiVersion: string;
  readonly namespaced: boolean;
  /** Taken from the cluster annotation (namespaced objects and Nodes); false = cluster-wide or mesh-wide. */
  readonly inCluster: boolean;
  /** Status subresource: the API server ignores status written with the object. */
  readonly ignoresStatus: boolean;
  readonly schema: Schema;
}

function isSelectorShape(s: Schema): boolean {
  const p = s.properties;
  return (
    s.type === 'object' &&
    p !== undefined &&
    Object.keys(p).length === 2 &&
    p['matchLabels'] !== undefined &&
    p['matchExpressions'] !== undefined
  );
}

/** Adds what the API server checks natively to a CRD schema: ObjectMeta and label selectors. */
function withNativeChecks(s: Schema, top = true): Schema {
  const out: { -readonly [K in keyof Schema]: Schema[K] } = { ...s };
  if (isSelectorShape(s)) out['x-palisade-check'] = checkSelector;
  if (s.properties) {
    const props: Record<string, Schema> = {};
    for (const [k, v] of Object.entries(s.properties)) {
      props[k] =
        top && k === 'metadata'
          ? objectMeta('dns1123-subdomain', false)
          : withNativeChecks(v, false);
    }
    out.properties = props;
  }
  if (s.items) out.items = withNativeChecks(s.items, false);
  if (typeof s.additionalProperties === 'object')
    out.additionalProperties = withNativeChecks(s.additionalProperties, false);
  return out;
}

function crd(kind: KindName): KindInfo {
  const c = CRD_SCHEMAS.find((x) => x.kind === kind);
  if (!c) throw new Error(`no CRD for ${kind} in crds/`);
  return {
    kind,
    apiVersion: `${c.group}/${c.version}`,
    namespaced: c.scope === 'Namespaced',
    inCluster: false,
    ignoresStatus: c.statusSubresource,
    schema: withNativeChecks(c.schema),
  };
}

export const KINDS: readonly KindInfo[] = [
  {
    kind: 'Namespace',
    apiVersion: 'v1',
    namespaced: false,
    inCluster: true,
    ignoresStatus: false,
    schema: NAMESPACE,
  },
  {
    kind: 'Pod',
    apiVersion: 'v1',
    namespaced: true,
    inCluster: true,
    ignoresStatus: false,
    schema: POD,
  },
  {
    kind: 'Node',
    apiVersion: 'v1',
    namespaced: false,
    inCluster: true,
    ignoresStatus: false,
    schema: NODE,
  },
  crd('Cluster'),
  {
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    namespaced: true,
    inCluster: true,
    ignoresStatus: true,
    schema: NETWORK_POLICY,
  },
  {
    kind: 'ClusterNetworkPolicy',
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    namespaced: false,
    inCluster: true,
    ignoresStatus: true,
    schema: CLUSTER_NETWORK_POLICY,
  },
  {
    kind: 'AdminNetworkPolicy',
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    namespaced: false,
    inCluster: true,
    ignoresStatus: true,
    schema: ADMIN_NETWORK_POLICY,
  },
  {
    kind: 'BaselineAdminNetworkPolicy',
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    namespaced: false,
    inCluster: true,
    ignoresStatus: true,
    schema: BASELINE_ADMIN_NETWORK_POLICY,
  },
  crd('MeshNetworkPolicy'),
];

export const KIND_BY_NAME: ReadonlyMap<string, KindInfo> = new Map(KINDS.map((k) => [k.kind, k]));
