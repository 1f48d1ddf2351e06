/**
 * Publishes this node's pods to the mesh store as EndpointRecords under
 * `/palisade/clusters/<cluster>/endpoints/<namespace>/<pod>`.
 *
 * Who publishes (a decision the design leaves open): every agent publishes
 * the pods of its own node (spec.nodeName = its node, not hostNetwork, with
 * IPs), under a lease of its own. No leader election is needed, writes are
 * spread over the nodes, and liveness is right: a node whose agent is gone
 * stops renewing, and its pods age out of every other cluster after the TTL
 * (a dead cluster ages out the same way, all its nodes at once).
 *
 * Diff-based and idempotent: the desired records are compared with what this
 * process last wrote; only changed keys are put, vanished ones deleted, in
 * transactions of at most `batchSize` operations. A lost lease (etcd
 * unreachable longer than the TTL) is granted again and everything
 * re-published. A graceful stop releases the lease without revoking it, so a
 * restarting agent (upgrade) re-puts its keys under its new lease before the
 * old one expires: remote clusters see no gap.
 */
import type { Lease } from 'etcd3';
import type { Pod, World } from '../../../policy-compiler/src/model/world.js';
import {
  endpointKey,
  type EndpointRecord,
  type MeshStore,
} from '../../../tunnel/src/mesh-store.js';
import { Backoff } from './snapshot.js';

export interface EndpointPublisherOptions {
  readonly store: MeshStore;
  readonly cluster: string;
  readonly node: string;
  readonly ttlSec: number;
  readonly batchSize?: number;
  readonly onError?: (message: string) => void;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

/** A pod as other clusters need it (pure). */
export function endpointRecordOf(
  pod: Pod,
  namespaceLabels: Readonly<Record<string, string>>,
): EndpointRecord {
  return {
    namespace: pod.namespace,
    name: pod.name,
    uid: pod.uid,
    node: pod.nodeName,
    labels: pod.labels,
    namespaceLabels,
    ips: [...pod.ips],
    ports: pod.ports.map((p) => ({
      name: p.name,
      containerPort: p.containerPort,
      protocol: p.protocol,
    })),
  };
}

/** The keys and values this node should have in the store (pure). */
export function desiredEndpoints(world: World, cluster: string, node: string): Map<string, string> {
  const nsLabels = new Map(
    world.namespaces.filter((n) => n.cluster === cluster).map((n) => [n.name, n.labels]),
  );
  const out = new Map<string, string>();
  for (const p of world.pods) {
    if (p.cluster !== cluster || p.nodeName !== node || p.hostNetwork || p.ips.length === 0)
      continue;
    out.set(
      endpointKey(cluster, p.namespace, p.name),
      JSON.stringify(endpointRecordOf(p, nsLabels.get(p.namespace) ?? {})),
    );
  }
  return out;
}

/** What to write to go from `published` to `desired` (pure). */
export function diffEndpoints(
  published: ReadonlyMap<string, string>,
  desired: ReadonlyMap<string, string>,
): { puts: [string, string][]; deletes: string[] } {
  const puts: [string, string][] = [];
  for (const [k, v] of desired) if (published.get(k) !== v) puts.push([k, v]);
  const deletes = [...published.keys()].filter((k) => !desired.has(k));
  return { puts, deletes };
}

export class EndpointPublisher {
  private lease: Lease | null = null;
  private leaseId = '';
  private published = new Map<string, string>();
  private desired = new Map<string, string>();
  private running: Promise<void> | undefined;
  private again = false;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff: Backoff;
  /** Keys put and deleted so far (status, tests). */
  readonly stats = { puts: 0, deletes: 0, syncs: 0, leases: 0 };
  lastError: string | null = null;

  constructor(private readonly opts: EndpointPublisherOptions) {
    const b = opts.backoff ?? { initialMs: 500, maxMs: 10_000 };
    this.backoff = new Backoff(b.initialMs, b.maxMs);
  }

  /** Sets what should be published (from the local world) and syncs in the background. */
  update(world: World): void {
    this.desired = desiredEndpoints(world, this.opts.cluster, this.opts.node);
    this.kick();
  }

  /** Resolves when the store has what was last asked for (or the attempt failed). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  get publishedCount(): number {
    return this.published.size;
  }

  /** Stops renewing; the records stay until the lease's TTL (see the file comment). */
  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.lease?.release();
    this.lease = null;
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.sync();
      } while (this.again && !this.stopped);
    })().finally(() => (this.running = undefined));
  }

  private async ensureLease(): Promise<void> {
    if (this.lease) return;
    const lease = this.opts.store.client.lease(this.opts.ttlSec, { autoKeepAlive: true });
    lease.on('lost', (err: Error) => {
      if (this.lease !== lease || this.stopped) return;
      this.lease = null;
      this.published = new Map(); // the keys went with the lease
      this.lastError = `lease lost (${err.message.split('\n')[0]}); publishing again`;
      this.opts.onError?.(`mesh publish: ${this.lastError}`);
      this.kick();
    });
    this.leaseId = await lease.grant();
    this.lease = lease;
    this.stats.leases++;
  }

  private async sync(): Promise<void> {
    if (this.stopped) return;
    const desired = this.desired;
    try {
      await this.ensureLease();
      const { puts, deletes } = diffEndpoints(this.published, desired);
      if (puts.length + deletes.length > 0)
        await this.opts.store.writeBatch(puts, deletes, this.leaseId, this.opts.batchSize ?? 64);
      this.stats.puts += puts.length;
      this.stats.deletes += deletes.length;
      this.stats.syncs++;
      this.published = new Map(desired);
      this.lastError = null;
      this.backoff.reset();
    } catch (e) {
      // Unknown which keys made it: compare against nothing next time (puts are idempotent).
      this.published = new Map([...this.published].filter(([k]) => !desired.has(k)));
      this.lastError = `write failed: ${(e as Error).message.split('\n')[0]}`;
      this.opts.onError?.(`mesh publish: ${this.lastError}`);
      if (this.retry) clearTimeout(this.retry);
      this.retry = setTimeout(() => {
        this.retry = undefined;
        this.kick();
      }, this.backoff.next());
    }
  }
}
