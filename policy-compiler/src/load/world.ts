/**
 * loadWorldFromTexts: texts → World + every diagnostic. Pure (no I/O, no
 * clock) and total: whatever the input, it returns, never throws.
 */
import {
  CLUSTER_ANNOTATION,
  CLUSTER_NAME_LABEL,
  DEFAULT_CLUSTER,
  NAMESPACE_NAME_LABEL,
  NO_SOURCE,
  type Cluster,
  type ClusterPolicy,
  type ClusterPolicyKind,
  type Namespace,
  type NetworkPolicy,
  type Node,
  type Pod,
  type SourcePos,
  type World,
} from '../model/index.js';
import {
  decodeCluster,
  decodeClusterPolicy,
  decodeNamespace,
  decodeNetworkPolicy,
  decodeNode,
  decodePod,
  type DecodeContext,
} from './decode.js';
import { compareDiagnostics, type Diagnostic, type DiagnosticCode } from './diagnostics.js';
import { KIND_BY_NAME, KINDS, type KindInfo } from './kinds.js';
import {
  DEFAULT_LIMITS,
  formatPath,
  parseYamlText,
  type FieldPath,
  type LoaderLimits,
  type LocatedDocument,
  type Span,
} from './located.js';
import type { ParseCache } from './parse-cache.js';
import { dns1123Subdomain } from './schema/k8s-names.js';
import { show, validateAgainstSchema } from './validate.js';

export interface LoadInput {
  readonly file: string;
  readonly text: string;
}

export interface LoadOptions {
  readonly limits?: Partial<LoaderLimits>;
  /** Reuse the parse of files whose text is unchanged since the last load with this cache. */
  readonly parseCache?: ParseCache;
}

/** One object found in the input, valid or not (for `palisade lint` summaries). */
export interface LoadedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | null;
  /** Cluster the object belongs to; null for mesh-wide kinds and unknown kinds. */
  readonly cluster: string | null;
  readonly source: SourcePos;
  /** False when any error was reported for it (it is then not in the world). */
  readonly valid: boolean;
}

export interface LoadResult {
  readonly world: World;
  readonly diagnostics: Diagnostic[];
  readonly objects: LoadedObject[];
}

const SUPPORTED = KINDS.map((k): string => k.kind)
  .concat(['List'])
  .sort();

class Collector {
  readonly diagnostics: Diagnostic[] = [];

  at(
    file: string,
    span: Span,
    code: DiagnosticCode,
    path: FieldPath | string,
    message: string,
    severity: 'error' | 'warning' = 'error',
  ): void {
    this.diagnostics.push({
      severity,
      code,
      file,
      line: span.line,
      col: span.col,
      endLine: span.endLine,
      endCol: span.endCol,
      path: typeof path === 'string' ? path : formatPath(path),
      message,
    });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

interface Decoded {
  readonly info: KindInfo;
  readonly value: unknown;
}

class WorldBuilder {
  readonly clusters = new Map<string, Cluster>();
  readonly namespaces = new Map<string, Namespace>();
  readonly pods: Pod[] = [];
  readonly nodes: Node[] = [];
  readonly networkPolicies: NetworkPolicy[] = [];
  readonly clusterPolicies: ClusterPolicy[] = [];
  readonly referencedClusters = new Set<string>();
  readonly referencedNamespaces = new Map<string, { cluster: string; name: string }>();

  build(): World {
    for (const c of this.referencedClusters) {
      if (!this.clusters.has(c)) {
        this.clusters.set(c, {
          name: c,
          labels: { [CLUSTER_NAME_LABEL]: c },
          podCIDRs: [],
          serviceCIDRs: [],
          nodeCIDRs: [],
          gateway: null,
          declared: false,
          source: NO_SOURCE,
        });
      }
    }
    for (const [key, ns] of this.referencedNamespaces) {
      if (!this.namespaces.has(key)) {
        this.namespaces.set(key, {
          cluster: ns.cluster,
          name: ns.name,
          labels: { [NAMESPACE_NAME_LABEL]: ns.name },
          declared: false,
          source: NO_SOURCE,
        });
      }
    }
    const by =
      <T>(...keys: Array<(x: T) => string>) =>
      (a: T, b: T) => {
        for (const k of keys) {
          const x = k(a);
          const y = k(b);
          if (x !== y) return x < y ? -1 : 1;
        }
        return 0;
      };
    return {
      clusters: [...this.clusters.values()].sort(by((c) => c.name)),
      namespaces: [...this.namespaces.values()].sort(
        by(
          (n) => n.cluster,
          (n) => n.name,
        ),
      ),
      pods: this.pods.sort(
        by(
          (p) => p.cluster,
          (p) => p.namespace,
          (p) => p.name,
        ),
      ),
      nodes: this.nodes.sort(
        by(
          (n) => n.cluster,
          (n) => n.name,
        ),
      ),
      networkPolicies: this.networkPolicies.sort(
        by(
          (p) => p.cluster,
          (p) => p.namespace,
          (p) => p.name,
        ),
      ),
      clusterPolicies: this.clusterPolicies.sort(
        by(
          (p) => p.cluster ?? '',
          (p) => p.name,
          (p) => p.kind,
        ),
      ),
    };
  }
}

type DecodedObject =
  | { readonly kind: 'Cluster'; readonly value: Cluster }
  | { readonly kind: 'Namespace'; readonly value: Namespace }
  | { readonly kind: 'Pod'; readonly value: Pod }
  | { readonly kind: 'Node'; readonly value: Node }
  | { readonly kind: 'NetworkPolicy'; readonly value: NetworkPolicy }
  | { readonly kind: 'ClusterPolicy'; readonly value: ClusterPolicy };

/** A pure function of the object's document and place in it (so it can be memoized per document). */
function decodeObject(d: Decoded, ctx: DecodeContext): DecodedObject {
  const v = d.value;
  switch (d.info.kind) {
    case 'Cluster':
      return { kind: 'Cluster', value: decodeCluster(v, ctx) };
    case 'Namespace':
      return { kind: 'Namespace', value: decodeNamespace(v, ctx) };
    case 'Pod':
      return { kind: 'Pod', value: decodePod(v, ctx) };
    case 'Node':
      return { kind: 'Node', value: decodeNode(v, ctx) };
    case 'NetworkPolicy':
      return { kind: 'NetworkPolicy', value: decodeNetworkPolicy(v, ctx) };
    default:
      return {
        kind: 'ClusterPolicy',
        value: decodeClusterPolicy(d.info.kind as ClusterPolicyKind, v, ctx),
      };
  }
}

/**
 * Loads one input on its own: everything that depends on this file alone
 * (parsing, schema, decoding), as steps that `Loader` replays in order. The
 * steps are what `ParseCache` keeps for an unchanged file, so the parsed
 * YAML (large: positions of every node) is garbage once the file is done.
 */
class FileLoader {
  readonly out = new Collector();
  readonly steps: FileStep[] = [];

  constructor(private readonly limits: LoaderLimits) {}

  /** A diagnostic as a step (diagnostics and objects keep their order). */
  private flush(): void {
    for (const d of this.out.diagnostics) this.steps.push({ kind: 'diagnostic', d });
    this.out.diagnostics.length = 0;
  }

  text(input: LoadInput): void {
    const file = input.file;
    const start: Span = { line: 1, col: 1, endLine: 1, endCol: 1 };
    let text = input.text;
    if (typeof text !== 'string') {
      this.out.at(file, start, 'PAL002', '', 'input is not text');
      return;
    }
    if (
      text.length > this.limits.maxBytes ||
      Buffer.byteLength(text, 'utf8') > this.limits.maxBytes
    ) {
      this.out.at(
        file,
        start,
        'PAL003',
        '',
        `input too large (allowed: at most ${this.limits.maxBytes} bytes, got: ${Buffer.byteLength(text, 'utf8')})`,
      );
      return;
    }
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const nul = text.indexOf('\u0000');
    if (nul >= 0) {
      const line = text.slice(0, nul).split('\n').length;
      const hint =
        /^\u00ff\u00fe|^\u00fe\u00ff|^\ufffd\ufffd/.test(text) || nul < 4
          ? ' (UTF-16 or UTF-32?)'
          : '';
      this.out.at(
        file,
        { line, col: 1, endLine: line, endCol: 1 },
        'PAL002',
        '',
        `input contains NUL bytes: not UTF-8 text${hint} (allowed: UTF-8)`,
      );
      return;
    }
    if (
      text.startsWith('\ufffd\ufffd') ||
      text.startsWith('\u00ff\u00fe') ||
      text.startsWith('\u00fe\u00ff')
    ) {
      this.out.at(
        file,
        start,
        'PAL002',
        '',
        'input starts with a UTF-16 byte order mark (allowed: UTF-8)',
      );
      return;
    }
    const parsed = parseYamlText(file, text, this.limits);
    for (const p of parsed.problems) {
      const code: DiagnosticCode =
        p.kind === 'limit'
          ? 'PAL003'
          : p.kind === 'duplicate-key'
            ? 'PAL005'
            : p.kind === 'encoding'
              ? 'PAL002'
              : 'PAL001';
      this.out.at(file, p.span, code, p.path ?? '', p.message);
    }
    for (const doc of parsed.documents) this.document(doc);
  }

  document(doc: LocatedDocument): void {
    const v = doc.value;
    if (!isObject(v)) {
      this.out.at(
        doc.file,
        doc.span,
        'PAL004',
        '',
        `document is not an object (allowed: a mapping with apiVersion and kind, got: ${show(v)})`,
      );
      return;
    }
    if (v['kind'] === 'List') {
      this.list(doc, v);
      return;
    }
    this.object(doc, v, []);
  }

  list(doc: LocatedDocument, v: Record<string, unknown>): void {
    if (v['apiVersion'] !== 'v1') {
      this.out.at(
        doc.file,
        doc.spanOf(['apiVersion']),
        'PAL011',
        'apiVersion',
        `wrong apiVersion for kind List (allowed: "v1", got: ${v['apiVersion'] === undefined ? 'nothing' : show(v['apiVersion'])})`,
      );
    }
    for (const k of Object.keys(v)) {
      if (!['apiVersion', 'kind', 'metadata', 'items'].includes(k)) {
        this.out.at(
          doc.file,
          doc.keySpanOf([k]),
          'PAL020',
          [k],
          'unknown field (allowed: apiVersion, items, kind, metadata)',
        );
      }
    }
    const items = v['items'];
    if (items === undefined) return;
    if (!Array.isArray(items)) {
      this.out.at(
        doc.file,
        doc.spanOf(['items']),
        'PAL021',
        'items',
        `wrong type (allowed: array, got: ${show(items)})`,
      );
      return;
    }
    items.forEach((item, i) => {
      if (!isObject(item)) {
        this.out.at(
          doc.file,
          doc.spanOf(['items', i]),
          'PAL004',
          ['items', i],
          `list item is not an object (allowed: a mapping with apiVersion and kind, got: ${show(item)})`,
        );
      } else if (item['kind'] === 'List') {
        this.out.at(
          doc.file,
          doc.spanOf(['items', i, 'kind']),
          'PAL010',
          ['items', i, 'kind'],
          'a List cannot contain a List',
        );
      } else this.object(doc, item, ['items', i]);
    });
  }

  object(doc: LocatedDocument, v: Record<string, unknown>, base: FieldPath): void {
    const file = doc.file;
    this.flush();
    const kindV = v['kind'];
    const apiV = v['apiVersion'];
    const meta = isObject(v['metadata']) ? v['metadata'] : {};
    const name = typeof meta['name'] === 'string' ? meta['name'] : '';
    const ns = typeof meta['namespace'] === 'string' ? meta['namespace'] : null;
    const source = this.pos(doc, base);
    const info = typeof kindV === 'string' ? KIND_BY_NAME.get(kindV) : undefined;
    if (!info) {
      const got = kindV === undefined ? 'nothing' : show(kindV);
      const msg = kindV === undefined ? 'required field is missing' : 'unknown kind';
      this.out.at(
        file,
        kindV === undefined ? doc.spanOf(base) : doc.spanOf([...base, 'kind']),
        'PAL010',
        [...base, 'kind'],
        `${msg} (allowed: ${SUPPORTED.join(', ')}, got: ${got})`,
      );
      this.flush();
      this.steps.push({
        kind: 'object',
        o: {
          loaded: {
            apiVersion: typeof apiV === 'string' ? apiV : '',
            kind: typeof kindV === 'string' ? kindV : '',
            name,
            namespace: ns,
            cluster: null,
            source,
          },
          ownErrors: true,
          duplicate: null,
          decoded: null,
        },
      });
      return;
    }
    if (apiV !== info.apiVersion) {
      const got = apiV === undefined ? 'nothing' : show(apiV);
      this.out.at(
        file,
        apiV === undefined ? doc.spanOf(base) : doc.spanOf([...base, 'apiVersion']),
        'PAL011',
        [...base, 'apiVersion'],
        `${apiV === undefined ? 'required field is missing' : `wrong apiVersion for kind ${info.kind}`} (allowed: ${JSON.stringify(info.apiVersion)}, got: ${got})`,
      );
    }

    // The API server drops status written with the object when the kind has a status subresource.
    let value: Record<string, unknown> = v;
    if (info.ignoresStatus && 'status' in v) {
      const { status: _ignored, ...rest } = v;
      value = rest;
    }
    for (const issue of validateAgainstSchema(value, info.schema, base)) {
      this.out.at(
        file,
        this.issueSpan(doc, issue.path, issue.at),
        issue.code,
        issue.path,
        issue.message,
      );
    }
    if (!info.namespaced && ns !== null) {
      this.out.at(
        file,
        doc.spanOf([...base, 'metadata', 'namespace']),
        'PAL040',
        [...base, 'metadata', 'namespace'],
        `ignored: ${info.kind} is cluster-scoped (got: ${show(ns)})`,
        'warning',
      );
    }

    // Cluster membership.
    let cluster: string | null = null;
    if (info.kind === 'Cluster') cluster = name;
    else if (info.inCluster) {
      const ann = isObject(meta['annotations'])
        ? meta['annotations'][CLUSTER_ANNOTATION]
        : undefined;
      cluster = typeof ann === 'string' ? ann : DEFAULT_CLUSTER;
      if (typeof ann === 'string') {
        for (const m of dns1123Subdomain(ann)) {
          const p = [...base, 'metadata', 'annotations', CLUSTER_ANNOTATION];
          this.out.at(
            file,
            doc.spanOf(p),
            'PAL026',
            p,
            `not a valid cluster name: ${m} (got: ${show(ann)})`,
          );
        }
      }
    }
    const namespace = info.namespaced ? (ns ?? 'default') : null;

    // Duplicates (same kind, cluster, namespace and name) are found across files, by Loader.
    const where = [...base, 'metadata', 'name'];
    const duplicate =
      name === ''
        ? null
        : {
            key: `${info.kind}/${cluster ?? '*'}/${namespace ?? ''}/${name}`,
            span: doc.spanOf(where),
            path: where,
            what: `${info.kind} ${namespace ? `${namespace}/` : ''}${name}${cluster && info.kind !== 'Cluster' ? ` in cluster ${cluster}` : ''}`,
          };
    const ownErrors = this.out.diagnostics.some((d) => d.severity === 'error');
    this.flush();
    let decoded: FileObject['decoded'] = null;
    if (!ownErrors) {
      try {
        decoded = decodeObject({ info, value }, { doc, base, cluster: cluster ?? DEFAULT_CLUSTER });
      } catch (e) {
        // A decoder bug must not take the whole run down; report it against the object.
        const c = new Collector();
        c.at(
          file,
          doc.spanOf(base),
          'PAL027',
          base,
          `internal error while decoding: ${e instanceof Error ? e.message : String(e)}`,
        );
        decoded = c.diagnostics[0] as Diagnostic;
      }
    }
    this.steps.push({
      kind: 'object',
      o: {
        loaded: { apiVersion: info.apiVersion, kind: info.kind, name, namespace, cluster, source },
        ownErrors,
        duplicate,
        decoded,
      },
    });
  }

  /** Unknown fields point at their key; missing fields at the key of their parent. */
  issueSpan(doc: LocatedDocument, path: FieldPath, at: 'key' | 'value' | 'parent'): Span {
    if (at === 'key') return doc.keySpanOf(path);
    if (at === 'parent') return path.length > 1 ? doc.keySpanOf(path.slice(0, -1)) : doc.span;
    return doc.spanOf(path);
  }

  pos(doc: LocatedDocument, base: FieldPath): SourcePos {
    const s = doc.spanOf(base);
    return { file: doc.file, line: s.line, col: s.col };
  }

  /** All steps of the file, the trailing diagnostics included. */
  done(): readonly FileStep[] {
    this.flush();
    return this.steps;
  }
}

/** One object of a file, before the checks across files (duplicates). */
interface FileObject {
  readonly loaded: Omit<LoadedObject, 'valid'>;
  /** The object has errors of its own (unknown kind, schema, annotation): it is not loaded. */
  readonly ownErrors: boolean;
  /** What a duplicate is recognised by and reported at; null for an unnamed object. */
  readonly duplicate: {
    readonly key: string;
    readonly span: Span;
    readonly path: FieldPath;
    readonly what: string;
  } | null;
  /** Its decoded form (or the decoder's failure), when it has no errors of its own. */
  readonly decoded: DecodedObject | Diagnostic | null;
}

/** What loading one file gives, in order; replayed by Loader (and kept by ParseCache). */
export type FileStep =
  | { readonly kind: 'diagnostic'; readonly d: Diagnostic }
  | { readonly kind: 'object'; readonly o: FileObject };

/** One input's steps; total: a failure is a diagnostic step. */
export function loadFile(input: LoadInput, limits: LoaderLimits): readonly FileStep[] {
  const f = new FileLoader(limits);
  try {
    f.text(input);
  } catch (e) {
    f.out.at(
      input.file,
      { line: 1, col: 1, endLine: 1, endCol: 1 },
      'PAL003',
      '',
      `input could not be loaded: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
    );
  }
  return f.done();
}

/** Replays files' steps: duplicates across files, the object list and the world. */
class Loader {
  readonly out = new Collector();
  readonly objects: LoadedObject[] = [];
  readonly seen = new Map<string, SourcePos>();
  readonly world = new WorldBuilder();

  replay(steps: readonly FileStep[]): void {
    for (const step of steps) {
      if (step.kind === 'diagnostic') {
        this.out.diagnostics.push(step.d);
        continue;
      }
      const o = step.o;
      let valid = !o.ownErrors;
      if (o.duplicate) {
        const first = this.seen.get(o.duplicate.key);
        if (first) {
          this.out.at(
            o.loaded.source.file,
            o.duplicate.span,
            'PAL030',
            o.duplicate.path,
            `duplicate object: ${o.duplicate.what} is already defined at ${first.file}:${first.line}:${first.col}`,
          );
          valid = false;
        } else this.seen.set(o.duplicate.key, o.loaded.source);
      }
      this.objects.push({ ...o.loaded, valid });
      if (!valid || o.decoded === null) continue;
      if ('severity' in o.decoded) this.out.diagnostics.push(o.decoded);
      else this.insert(o.decoded);
    }
  }

  private insert(o: DecodedObject): void {
    const w = this.world;
    const refNs = (cluster: string, name: string) =>
      w.referencedNamespaces.set(`${cluster}/${name}`, { cluster, name });
    switch (o.kind) {
      case 'Cluster':
        w.clusters.set(o.value.name, o.value);
        return;
      case 'Namespace':
        w.referencedClusters.add(o.value.cluster);
        w.namespaces.set(`${o.value.cluster}/${o.value.name}`, o.value);
        return;
      case 'Pod':
        w.referencedClusters.add(o.value.cluster);
        refNs(o.value.cluster, o.value.namespace);
        w.pods.push(o.value);
        return;
      case 'Node':
        w.referencedClusters.add(o.value.cluster);
        w.nodes.push(o.value);
        return;
      case 'NetworkPolicy':
        w.referencedClusters.add(o.value.cluster);
        refNs(o.value.cluster, o.value.namespace);
        w.networkPolicies.push(o.value);
        return;
      case 'ClusterPolicy':
        if (o.value.cluster !== null) w.referencedClusters.add(o.value.cluster);
        w.clusterPolicies.push(o.value);
    }
  }
}

/**
 * Loads a world from YAML/JSON texts. Every problem of every input is in
 * `diagnostics` (sorted by file and position); objects with errors are left
 * out of `world`. Never throws.
 */
export function loadWorldFromTexts(
  inputs: readonly LoadInput[],
  opts: LoadOptions = {},
): LoadResult {
  const limits: LoaderLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const loader = new Loader();
  for (const input of inputs) {
    const steps =
      opts.parseCache && typeof input.text === 'string'
        ? opts.parseCache.get(input.file, input.text, limits, () => loadFile(input, limits))
        : loadFile(input, limits);
    loader.replay(steps);
  }
  opts.parseCache?.endLoad();
  let world: World;
  try {
    world = loader.world.build();
  } catch {
    world = {
      clusters: [],
      namespaces: [],
      pods: [],
      nodes: [],
      networkPolicies: [],
      clusterPolicies: [],
    };
  }
  return {
    world,
    diagnostics: loader.out.diagnostics.sort(compareDiagnostics),
    objects: loader.objects,
  };
}
