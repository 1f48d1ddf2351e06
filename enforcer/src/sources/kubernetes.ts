/**
 * The Kubernetes API as a source, through @kubernetes/client-node informers
 * (ListWatch): list, then watch from the list's resourceVersion with
 * bookmarks; a 410 Gone (expired resourceVersion) makes ListWatch relist; a
 * dropped stream re-watches from the last resourceVersion; a failed list or
 * watch restarts after an exponential backoff. Objects become the documents
 * the loader reads (JSON text, apiVersion/kind set, managedFields dropped).
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  ListWatch,
  Watch,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { Backoff, makeSnapshot, type ManifestInput, type SourceSnapshot } from './snapshot.js';

export interface KubeResource {
  /** Plural resource name, also the input file prefix. */
  readonly plural: string;
  readonly group: string; // '' = core
  readonly version: string;
  readonly kind: string;
  /** Set the agent's cluster annotation on these objects. */
  readonly clusterLocal: boolean;
}

const POLICY_GROUP = 'policy.networking.k8s.io';
export const KUBE_RESOURCES: readonly KubeResource[] = [
  { plural: 'namespaces', group: '', version: 'v1', kind: 'Namespace', clusterLocal: true },
  { plural: 'pods', group: '', version: 'v1', kind: 'Pod', clusterLocal: true },
  { plural: 'nodes', group: '', version: 'v1', kind: 'Node', clusterLocal: true },
  {
    plural: 'networkpolicies',
    group: 'networking.k8s.io',
    version: 'v1',
    kind: 'NetworkPolicy',
    clusterLocal: true,
  },
  {
    plural: 'clusternetworkpolicies',
    group: POLICY_GROUP,
    version: 'v1alpha2',
    kind: 'ClusterNetworkPolicy',
    clusterLocal: true,
  },
  {
    plural: 'adminnetworkpolicies',
    group: POLICY_GROUP,
    version: 'v1alpha1',
    kind: 'AdminNetworkPolicy',
    clusterLocal: true,
  },
  {
    plural: 'baselineadminnetworkpolicies',
    group: POLICY_GROUP,
    version: 'v1alpha1',
    kind: 'BaselineAdminNetworkPolicy',
    clusterLocal: true,
  },
  {
    plural: 'meshnetworkpolicies',
    group: 'palisade.dev',
    version: 'v1alpha1',
    kind: 'MeshNetworkPolicy',
    clusterLocal: false,
  },
  {
    plural: 'clusters',
    group: 'palisade.dev',
    version: 'v1alpha1',
    kind: 'Cluster',
    clusterLocal: false,
  },
];

export const CLUSTER_ANNOTATION = 'palisade.dev/cluster';

export const resourcePath = (r: KubeResource): string =>
  r.group === '' ? `/api/${r.version}/${r.plural}` : `/apis/${r.group}/${r.version}/${r.plural}`;

export interface KubernetesSourceOptions {
  readonly kubeConfig: KubeConfig;
  readonly onSnapshot: (s: SourceSnapshot) => void;
  /** Problems worth a log line (list/watch failures, missing CRDs). Never includes credentials. */
  readonly onError?: (resource: string, message: string) => void;
  /** The agent's cluster: objects without the annotation get it (default: leave as is). */
  readonly clusterName?: string;
  readonly resources?: readonly KubeResource[];
  readonly debounceMs?: number;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

/** Watch that asks for bookmarks and slows down a server that keeps closing streams at once. */
class BookmarkWatch extends Watch {
  private lastStart = 0;
  constructor(
    config: KubeConfig,
    private readonly backoff: Backoff,
    private readonly isStopped: () => boolean,
  ) {
    super(config);
  }
  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const now = Date.now();
    if (now - this.lastStart < 1000) {
      await new Promise((r) => setTimeout(r, this.backoff.next()));
    } else {
      this.backoff.reset();
    }
    this.lastStart = Date.now();
    if (this.isStopped()) {
      const c = new AbortController();
      c.abort();
      return c;
    }
    return super.watch(path, { ...queryParams, allowWatchBookmarks: true }, callback, done);
  }
}

/** The loader's document form of an API object. */
export function toDocument(
  r: KubeResource,
  obj: KubernetesObject,
  clusterName?: string,
): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(obj)) as Record<string, unknown> & {
    metadata?: Record<string, unknown>;
  };
  const metadata = { ...(plain.metadata ?? {}) };
  delete metadata.managedFields;
  if (clusterName && r.clusterLocal) {
    const ann = { ...((metadata.annotations as Record<string, string> | undefined) ?? {}) };
    ann[CLUSTER_ANNOTATION] ??= clusterName;
    metadata.annotations = ann;
  }
  return {
    ...plain,
    apiVersion: r.group === '' ? r.version : `${r.group}/${r.version}`,
    kind: r.kind,
    metadata,
  };
}

const errText = (e: unknown): string => {
  const code =
    (e as { code?: unknown; statusCode?: unknown }).code ??
    (e as { statusCode?: unknown }).statusCode;
  const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
  return code !== undefined ? `${msg} (${String(code)})` : (msg ?? 'error');
};

interface Informer {
  readonly resource: KubeResource;
  readonly lw: ListWatch<KubernetesObject>;
  synced: boolean;
  restart: NodeJS.Timeout | undefined;
  readonly backoff: Backoff;
}

export class KubernetesSource {
  private readonly informers: Informer[] = [];
  private debounce: NodeJS.Timeout | undefined;
  private lastDigest: string | undefined;
  private stopped = true;
  private readonly lists = new Map<string, number>();

  constructor(private readonly opts: KubernetesSourceOptions) {
    const core = opts.kubeConfig.makeApiClient(CoreV1Api);
    const custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    const b = opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
    for (const resource of opts.resources ?? KUBE_RESOURCES) {
      const backoff = new Backoff(b.initialMs, b.maxMs);
      const watch = new BookmarkWatch(
        opts.kubeConfig,
        new Backoff(b.initialMs, b.maxMs),
        () => this.stopped,
      );
      const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
        let out: KubernetesListObject<KubernetesObject>;
        try {
          out = await fetchList();
        } catch (e) {
          if ((e as { code?: unknown }).code !== 404) throw e;
          // Resource not served (CRD not installed): an empty, synced set; the
          // watch 404s and the backoff restart notices when it appears.
          opts.onError?.(
            resource.plural,
            `${resourcePath(resource)} not served (CRD not installed?)`,
          );
          out = { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items: [] };
        }
        this.lists.set(resource.plural, (this.lists.get(resource.plural) ?? 0) + 1);
        inf.synced = true;
        inf.backoff.reset();
        this.changed();
        return out;
      };
      const fetchList = async (): Promise<KubernetesListObject<KubernetesObject>> => {
        let out: KubernetesListObject<KubernetesObject>;
        if (resource.group === '') {
          out = (await (resource.plural === 'pods'
            ? core.listPodForAllNamespaces()
            : resource.plural === 'namespaces'
              ? core.listNamespace()
              : core.listNode())) as KubernetesListObject<KubernetesObject>;
        } else {
          out = (await custom.listClusterCustomObject({
            group: resource.group,
            version: resource.version,
            plural: resource.plural,
          })) as KubernetesListObject<KubernetesObject>;
        }
        return out;
      };
      const lw = new ListWatch<KubernetesObject>(resourcePath(resource), watch, list, false);
      const inf: Informer = { resource, lw, synced: false, restart: undefined, backoff };
      lw.on('change', () => this.changed());
      lw.on('error', (err?: unknown) => {
        opts.onError?.(resource.plural, errText(err));
        if (this.stopped) return;
        inf.restart = setTimeout(() => {
          inf.restart = undefined;
          if (!this.stopped)
            void lw.start().catch((e) => opts.onError?.(resource.plural, errText(e)));
        }, inf.backoff.next());
      });
      this.informers.push(inf);
    }
  }

  /** Starts every informer; the first snapshot comes once all have listed. */
  async start(): Promise<void> {
    this.stopped = false;
    await Promise.all(
      this.informers.map((i) =>
        i.lw.start().catch((e) => this.opts.onError?.(i.resource.plural, errText(e))),
      ),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.debounce) clearTimeout(this.debounce);
    for (const i of this.informers) {
      if (i.restart) clearTimeout(i.restart);
      await i.lw.stop();
    }
  }

  /** Lists done for one resource (initial and relists), for status and tests. */
  listCount(plural: string): number {
    return this.lists.get(plural) ?? 0;
  }

  /** Where the watch of one resource resumes (last event or bookmark). */
  resourceVersion(plural: string): string {
    return (
      this.informers.find((i) => i.resource.plural === plural)?.lw.latestResourceVersion() ?? ''
    );
  }

  /** True once every resource has been listed at least once. */
  get synced(): boolean {
    return this.informers.every((i) => i.synced);
  }

  /** The current documents, whatever has been emitted. */
  snapshot(): SourceSnapshot {
    const inputs: ManifestInput[] = [];
    for (const i of this.informers) {
      for (const obj of i.lw.list()) {
        const ns = obj.metadata?.namespace;
        const name = obj.metadata?.name ?? '';
        inputs.push({
          file: `kubernetes:${i.resource.plural}/${ns ? `${ns}/` : ''}${name}`,
          text: JSON.stringify(toDocument(i.resource, obj, this.opts.clusterName)),
        });
      }
    }
    return makeSnapshot(inputs);
  }

  private changed(): void {
    if (this.stopped) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      if (this.stopped || !this.synced) return;
      const s = this.snapshot();
      if (s.digest === this.lastDigest) return;
      this.lastDigest = s.digest;
      this.opts.onSnapshot(s);
    }, this.opts.debounceMs ?? 100);
  }
}

/**
 * A KubeConfig for one API server URL and bearer token (tests, out-of-cluster
 * use). client-node refuses plain http unless skipTLSVerify is set.
 */
export function kubeConfigFor(
  server: string,
  token?: string,
  tls: { readonly caPem?: string; readonly skipTLSVerify?: boolean } = {},
): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server,
        skipTLSVerify: tls.skipTLSVerify ?? false,
        ...(tls.caPem ? { caData: Buffer.from(tls.caPem).toString('base64') } : {}),
      },
    ],
    users: [{ name: 'u', ...(token ? { token } : {}) }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}
