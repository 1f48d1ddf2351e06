/**
 * The lab's world: the examples/ world re-addressed to the lab. Namespaces,
 * labels and pod specs (named container ports) are copied from the example
 * cluster each lab cluster is modelled on; Clusters, Nodes and pod IPs are the
 * ones the lab actually assigned; the example policies are copied verbatim.
 * So `palisade matrix -f <lab world>` predicts the lab's traffic.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { WG_PORT, type LabPlan, type TemplatePod } from './plan.js';

type Doc = Record<string, unknown> & {
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
};

const CLUSTER_ANNOTATION = 'palisade.dev/cluster';

/** The repository root (holds examples/), from src or dist. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'examples', 'world', 'workloads.yaml'))) return dir;
    dir = resolve(dir, '..');
  }
  throw new Error('cannot find examples/world next to the lab module');
}

export interface ExampleWorld {
  readonly clusters: ReadonlyMap<string, Doc>;
  readonly namespaces: readonly Doc[];
  readonly pods: readonly Doc[];
  /** policy files by base name, verbatim */
  readonly policies: ReadonlyMap<string, string>;
}

function docs(text: string, file: string): Doc[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]?.message ?? 'YAML error'}`);
      return d.toJS() as Doc;
    })
    .filter((d): d is Doc => d !== null && typeof d === 'object');
}

export function readExampleWorld(root = repoRoot()): ExampleWorld {
  const dir = join(root, 'examples', 'world');
  const clusters = new Map<string, Doc>();
  for (const d of docs(readFileSync(join(dir, 'clusters.yaml'), 'utf8'), 'clusters.yaml')) {
    if (d.kind === 'Cluster' && d.metadata?.name) clusters.set(d.metadata.name, d);
  }
  const all = docs(readFileSync(join(dir, 'workloads.yaml'), 'utf8'), 'workloads.yaml');
  const policies = new Map<string, string>();
  const pdir = join(dir, 'policies');
  for (const f of readdirSync(pdir).sort())
    if (/\.ya?ml$/.test(f)) policies.set(f, readFileSync(join(pdir, f), 'utf8'));
  return {
    clusters,
    namespaces: all.filter((d) => d.kind === 'Namespace'),
    pods: all.filter((d) => d.kind === 'Pod'),
    policies,
  };
}

const clusterOf = (d: Doc): string => d.metadata?.annotations?.[CLUSTER_ANNOTATION] ?? 'default';
const baseName = (name: string): string => name.replace(/-\d+$/, '');

/** Distinct roles (namespace + pod base name) of each example cluster, in file order. */
export function templateRoles(ex: ExampleWorld): Map<string, TemplatePod[]> {
  const out = new Map<string, TemplatePod[]>();
  for (const p of ex.pods) {
    const c = clusterOf(p);
    const role = {
      namespace: p.metadata?.namespace ?? 'default',
      base: baseName(p.metadata?.name ?? 'pod'),
    };
    const list = out.get(c) ?? [];
    if (!list.some((r) => r.namespace === role.namespace && r.base === role.base)) list.push(role);
    out.set(c, list);
  }
  return out;
}

function templatePod(ex: ExampleWorld, cluster: string, role: TemplatePod): Doc {
  const p = ex.pods.find(
    (d) =>
      clusterOf(d) === cluster &&
      d.metadata?.namespace === role.namespace &&
      baseName(d.metadata?.name ?? '') === role.base,
  );
  if (!p) throw new Error(`example pod ${cluster}/${role.namespace}/${role.base}-* not found`);
  return p;
}

/** The lab world as files (name → YAML text): clusters.yaml, workloads.yaml and the example policies. */
export function labWorldFiles(plan: LabPlan, ex: ExampleWorld): Map<string, string> {
  const roles = templateRoles(ex);
  const out: Doc[] = [];
  const clusterDocs: Doc[] = [];
  for (const c of plan.clusters) {
    const t = ex.clusters.get(c.template);
    clusterDocs.push({
      apiVersion: 'palisade.dev/v1alpha1',
      kind: 'Cluster',
      metadata: { name: c.name, labels: { ...(t?.metadata?.labels ?? {}) } },
      spec: {
        podCIDRs: [c.podCIDR],
        serviceCIDRs: [c.serviceCIDR],
        nodeCIDRs: [c.nodeCIDR],
        gateway: { endpoint: `${c.gatewayUnderlayIp}:${WG_PORT}` },
      },
    });
    const ann = { [CLUSTER_ANNOTATION]: c.name };
    for (const n of c.nodes) {
      out.push({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: n.name, annotations: ann, labels: { 'kubernetes.io/hostname': n.name } },
        status: {
          addresses: [
            { type: 'InternalIP', address: n.ip },
            { type: 'Hostname', address: n.name },
          ],
        },
      });
    }
    const usedNs = new Set(c.pods.map((p) => p.namespace));
    for (const ns of ex.namespaces) {
      if (clusterOf(ns) !== c.template) continue;
      const name = ns.metadata?.name ?? '';
      if (!usedNs.has(name)) continue;
      out.push({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name, annotations: ann, labels: { ...(ns.metadata?.labels ?? {}) } },
      });
    }
    const tr = roles.get(c.template) ?? [];
    for (const p of c.pods) {
      const t = templatePod(ex, c.template, tr[p.template] as TemplatePod);
      out.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: p.name,
          namespace: p.namespace,
          annotations: ann,
          labels: { ...(t.metadata?.labels ?? {}) },
        },
        spec: { nodeName: p.node, containers: t.spec?.['containers'] },
        status: { podIP: p.ip, podIPs: [{ ip: p.ip }] },
      });
    }
  }
  const files = new Map<string, string>();
  const head =
    '# Generated by `palisade lab up` from examples/world with the addresses the lab assigned.\n';
  files.set('clusters.yaml', head + clusterDocs.map((d) => `---\n${stringify(d)}`).join(''));
  files.set('workloads.yaml', head + out.map((d) => `---\n${stringify(d)}`).join(''));
  for (const [f, text] of ex.policies) files.set(`policies/${f}`, text);
  return files;
}

/** Every TCP/UDP container port of the lab's pods (the ports the matrix probes and pods listen on). */
export function labPorts(
  plan: LabPlan,
  ex: ExampleWorld,
): { protocol: 'TCP' | 'UDP'; port: number }[] {
  const roles = templateRoles(ex);
  const seen = new Map<string, { protocol: 'TCP' | 'UDP'; port: number }>();
  for (const c of plan.clusters) {
    const tr = roles.get(c.template) ?? [];
    for (const p of c.pods) {
      const t = templatePod(ex, c.template, tr[p.template] as TemplatePod);
      for (const ct of (t.spec?.['containers'] as
        { ports?: { containerPort: number; protocol?: string }[] }[] | undefined) ?? []) {
        for (const port of ct.ports ?? []) {
          const protocol = (port.protocol ?? 'TCP') as 'TCP' | 'UDP';
          if (protocol !== 'TCP' && protocol !== 'UDP') continue;
          seen.set(`${protocol}/${port.containerPort}`, { protocol, port: port.containerPort });
        }
      }
    }
  }
  return [...seen.values()].sort((a, b) =>
    a.protocol === b.protocol ? a.port - b.port : a.protocol === 'TCP' ? -1 : 1,
  );
}
