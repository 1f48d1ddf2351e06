/**
 * Mesh store records → loader documents. Pure (no I/O, no clock).
 *
 * Another cluster's records are data published by software we do not run:
 * every value is size-limited, parsed strictly, turned into the document the
 * loader reads (Cluster, Pod; namespaces are synthesised from the endpoints'
 * namespace labels) and checked by the loader on its own, so one bad record
 * is reported with its key and skipped, never taken into the world and never
 * able to make the whole world invalid. MeshNetworkPolicies are the
 * exception: they are the security team's documents, so after the envelope
 * checks (size, JSON, kind, name = key) they go to the loader as written and
 * an invalid one is rejected like an invalid file of the directory source
 * (error in status, the previous policy stays enforced).
 */
import { isIP } from 'node:net';
import { loadWorldFromTexts } from '../../../policy-compiler/src/load/index.js';
import { formatDiagnostic } from '../../../policy-compiler/src/load/index.js';
import {
  parseStoreKey,
  type ClusterRecord,
  type EndpointRecord,
} from '../../../tunnel/src/mesh-store.js';

export interface MeshRecordLimits {
  /** Largest Cluster or endpoint value read (bytes). */
  readonly maxRecordBytes: number;
  /** Largest MeshNetworkPolicy value read (bytes). */
  readonly maxPolicyBytes: number;
  readonly maxLabels: number;
  readonly maxIps: number;
  readonly maxPorts: number;
}

export const DEFAULT_MESH_RECORD_LIMITS: MeshRecordLimits = {
  maxRecordBytes: 64 * 1024,
  maxPolicyBytes: 1024 * 1024,
  maxLabels: 64,
  maxIps: 8,
  maxPorts: 256,
};

/** A record read from the store, as a loader document (JSON text) plus what merging needs. */
export type MeshRecord =
  | { readonly kind: 'cluster'; readonly cluster: string; readonly text: string }
  | {
      readonly kind: 'endpoint';
      readonly cluster: string;
      readonly namespace: string;
      readonly name: string;
      readonly namespaceLabels: Readonly<Record<string, string>>;
      readonly text: string;
    }
  | { readonly kind: 'policy'; readonly name: string; readonly text: string };

export type ParsedRecord =
  | { readonly ok: true; readonly record: MeshRecord }
  /** Read but deliberately not used (own cluster, gateway keys): a reason, not a problem. */
  | { readonly ok: 'ignored'; readonly reason: string }
  | { readonly ok: false; readonly problem: string };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class RecordError extends Error {}

function stringMap(v: unknown, field: string, max: number): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new RecordError(`${field}: must be a map of strings`);
  const entries = Object.entries(v);
  if (entries.length > max) throw new RecordError(`${field}: more than ${max} entries`);
  for (const [k, x] of entries)
    if (typeof x !== 'string') throw new RecordError(`${field}.${k}: must be a string`);
  return v as Record<string, string>;
}

function stringList(v: unknown, field: string, max: number): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new RecordError(`${field}: must be a list of strings`);
  if (v.length > max) throw new RecordError(`${field}: more than ${max} items`);
  return v as string[];
}

function optString(v: unknown, field: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.length > 253) throw new RecordError(`${field}: must be a string`);
  return v;
}

function parseJson(value: Buffer, max: number): unknown {
  if (value.length > max)
    throw new RecordError(`value is ${value.length} bytes, limit ${max}; not read`);
  const text = value.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RecordError('not JSON');
  }
}

/** The loader's verdict on documents made from one record: the first error, if any. */
function loaderProblem(file: string, docs: readonly unknown[]): string | null {
  const r = loadWorldFromTexts(docs.map((d) => ({ file, text: JSON.stringify(d) })));
  const err = r.diagnostics.find((d) => d.severity === 'error');
  return err ? formatDiagnostic(err).replace(`${file}:`, '') : null;
}

const ANNOTATION = 'palisade.dev/cluster';

export function clusterDocument(rec: ClusterRecord): Obj {
  return {
    apiVersion: 'palisade.dev/v1alpha1',
    kind: 'Cluster',
    metadata: { name: rec.name, labels: rec.labels },
    spec: {
      podCIDRs: rec.podCIDRs,
      serviceCIDRs: rec.serviceCIDRs,
      nodeCIDRs: rec.nodeCIDRs,
      ...(rec.gateway ? { gateway: { endpoint: rec.gateway.endpoint } } : {}),
    },
  };
}

export function podDocument(cluster: string, e: EndpointRecord): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: e.name,
      namespace: e.namespace,
      ...(e.uid ? { uid: e.uid } : {}),
      labels: e.labels,
      annotations: { [ANNOTATION]: cluster },
    },
    spec: {
      ...(e.node ? { nodeName: e.node } : {}),
      containers: [
        {
          name: 'published',
          ports: e.ports.map((p) =>
            p.name === null
              ? { containerPort: p.containerPort, protocol: p.protocol }
              : { name: p.name, containerPort: p.containerPort, protocol: p.protocol },
          ),
        },
      ],
    },
    status: { podIP: e.ips[0], podIPs: e.ips.map((ip) => ({ ip })) },
  };
}

export function namespaceDocument(
  cluster: string,
  name: string,
  labels: Readonly<Record<string, string>>,
): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels, annotations: { [ANNOTATION]: cluster } },
  };
}

function parseEndpoint(
  v: unknown,
  k: { cluster: string; namespace: string; name: string },
  L: MeshRecordLimits,
): EndpointRecord {
  if (!isObj(v)) throw new RecordError('must be a JSON object');
  const allowed = ['namespace', 'name', 'uid', 'node', 'labels', 'namespaceLabels', 'ips', 'ports'];
  for (const f of Object.keys(v))
    if (!allowed.includes(f))
      throw new RecordError(`${f}: unknown field (allowed: ${allowed.join(', ')})`);
  if (v['namespace'] !== k.namespace || v['name'] !== k.name)
    throw new RecordError('namespace/name do not match the key');
  const ips = stringList(v['ips'], 'ips', L.maxIps);
  if (ips.length === 0) throw new RecordError('ips: at least one address is required');
  for (const [i, ip] of ips.entries())
    if (isIP(ip) === 0) throw new RecordError(`ips[${i}]: not an IP address`);
  const portsV = v['ports'] ?? [];
  if (!Array.isArray(portsV)) throw new RecordError('ports: must be a list');
  if (portsV.length > L.maxPorts) throw new RecordError(`ports: more than ${L.maxPorts} items`);
  const ports = portsV.map((p: unknown, i) => {
    if (!isObj(p)) throw new RecordError(`ports[${i}]: must be an object`);
    const n = p['containerPort'];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535)
      throw new RecordError(`ports[${i}].containerPort: must be an integer from 1 to 65535`);
    const proto = p['protocol'] ?? 'TCP';
    if (proto !== 'TCP' && proto !== 'UDP' && proto !== 'SCTP')
      throw new RecordError(`ports[${i}].protocol: must be TCP, UDP or SCTP`);
    return { name: optString(p['name'], `ports[${i}].name`), containerPort: n, protocol: proto };
  });
  return {
    namespace: k.namespace,
    name: k.name,
    uid: optString(v['uid'], 'uid'),
    node: optString(v['node'], 'node'),
    labels: stringMap(v['labels'], 'labels', L.maxLabels),
    namespaceLabels: stringMap(v['namespaceLabels'], 'namespaceLabels', L.maxLabels),
    ips,
    ports,
  };
}

function parseCluster(v: unknown, cluster: string, L: MeshRecordLimits): ClusterRecord {
  if (!isObj(v)) throw new RecordError('must be a JSON object');
  if (v['name'] !== cluster) throw new RecordError('name does not match the key');
  const gw = v['gateway'];
  let gateway: ClusterRecord['gateway'] = null;
  if (gw !== undefined && gw !== null) {
    if (!isObj(gw) || typeof gw['endpoint'] !== 'string')
      throw new RecordError('gateway: must be {endpoint: "<address>:<port>"}');
    gateway = { endpoint: gw['endpoint'] };
  }
  return {
    name: cluster,
    labels: stringMap(v['labels'], 'labels', L.maxLabels),
    podCIDRs: stringList(v['podCIDRs'], 'podCIDRs', 32),
    serviceCIDRs: stringList(v['serviceCIDRs'], 'serviceCIDRs', 32),
    nodeCIDRs: stringList(v['nodeCIDRs'], 'nodeCIDRs', 32),
    gateway,
  };
}

/**
 * One key and value from the store → a record for the world, a reason it is
 * not used, or a problem (what is wrong). Never throws.
 */
export function parseMeshRecord(
  key: string,
  value: Buffer,
  ownCluster: string,
  limits: MeshRecordLimits = DEFAULT_MESH_RECORD_LIMITS,
): ParsedRecord {
  const k = parseStoreKey(key);
  const file = `etcd:${key}`;
  try {
    switch (k.kind) {
      case 'epoch':
        return { ok: 'ignored', reason: 'tunnel key epoch (not policy input)' };
      case 'other':
        return { ok: false, problem: 'key does not fit the mesh store layout' };
      case 'gateway':
        return { ok: 'ignored', reason: 'gateway record (tunnel manager input)' };
      case 'policy': {
        const v = parseJson(value, limits.maxPolicyBytes);
        if (!isObj(v)) throw new RecordError('must be a JSON object');
        if (v['apiVersion'] !== 'palisade.dev/v1alpha1' || v['kind'] !== 'MeshNetworkPolicy')
          throw new RecordError(
            'only palisade.dev/v1alpha1 MeshNetworkPolicy documents belong under /palisade/policies/',
          );
        const meta = v['metadata'];
        if (!isObj(meta) || meta['name'] !== k.name)
          throw new RecordError('metadata.name does not match the key');
        return { ok: true, record: { kind: 'policy', name: k.name, text: JSON.stringify(v) } };
      }
      default:
        break;
    }
    if (k.kind !== 'cluster' && k.kind !== 'endpoint')
      return { ok: false, problem: 'key does not fit the mesh store layout' };
    if (k.cluster === ownCluster)
      return {
        ok: 'ignored',
        reason: `record of this agent's own cluster (${ownCluster}): the local source is authoritative`,
      };
    if (k.kind === 'cluster') {
      const rec = parseCluster(parseJson(value, limits.maxRecordBytes), k.cluster, limits);
      const doc = clusterDocument(rec);
      const bad = loaderProblem(file, [doc]);
      if (bad) throw new RecordError(bad);
      return {
        ok: true,
        record: { kind: 'cluster', cluster: k.cluster, text: JSON.stringify(doc) },
      };
    }
    const rec = parseEndpoint(parseJson(value, limits.maxRecordBytes), k, limits);
    const pod = podDocument(k.cluster, rec);
    const bad = loaderProblem(file, [
      namespaceDocument(k.cluster, k.namespace, rec.namespaceLabels),
      pod,
    ]);
    if (bad) throw new RecordError(bad);
    return {
      ok: true,
      record: {
        kind: 'endpoint',
        cluster: k.cluster,
        namespace: k.namespace,
        name: k.name,
        namespaceLabels: rec.namespaceLabels,
        text: JSON.stringify(pod),
      },
    };
  } catch (e) {
    if (e instanceof RecordError) return { ok: false, problem: e.message };
    return { ok: false, problem: `unreadable record (${(e as Error).message})` };
  }
}
