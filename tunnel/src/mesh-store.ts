/**
 * The mesh store in etcd. Layout (all values JSON):
 *   /palisade/clusters/<name>/cluster   the Cluster record          (lease)
 *   /palisade/clusters/<name>/gateway   endpoint, keys, routesEpoch (lease)
 *   /palisade/mesh/epoch                the mesh key epoch           (no lease)
 *   /palisade/policies/<name>           MeshNetworkPolicy documents  (no lease)
 *   /palisade/clusters/<name>/endpoints/<namespace>/<pod>
 *                                       EndpointRecord, written by the agent of the
 *                                       pod's node (that agent's lease)
 * Each cluster writes only under its own prefix, with a lease it keeps alive:
 * a dead cluster's records expire after the TTL and every gateway drops it.
 */
import { Etcd3, type IKeyValue, type Lease, type Watcher } from 'etcd3';
import type { GatewayKey, Member } from './plan.js';
import { parsePublicKey } from './keys.js';
import { checkClusterName } from './cluster-name.js';

export const ROOT = '/palisade/';
const CLUSTERS = `${ROOT}clusters/`;
const EPOCH = `${ROOT}mesh/epoch`;
const POLICIES = `${ROOT}policies/`;

/** The Cluster object as stored (the model's Cluster without its source position). */
export interface ClusterRecord {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly podCIDRs: readonly string[];
  readonly serviceCIDRs: readonly string[];
  readonly nodeCIDRs: readonly string[];
  readonly gateway: { readonly endpoint: string } | null;
}

export interface GatewayRecord {
  readonly endpointHost: string;
  readonly keys: readonly GatewayKey[];
  readonly routesEpoch: number;
}

/**
 * A pod as other clusters need it: enough to be selected by MeshNetworkPolicy
 * peers (labels, namespace labels) and to get an identity in their ipcache
 * (IPs), plus named ports. Published under the pod's cluster's prefix.
 */
export interface EndpointRecord {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | null;
  readonly node: string | null;
  readonly labels: Readonly<Record<string, string>>;
  readonly namespaceLabels: Readonly<Record<string, string>>;
  readonly ips: readonly string[];
  readonly ports: readonly {
    readonly name: string | null;
    readonly containerPort: number;
    readonly protocol: string;
  }[];
}

export const clusterPrefix = (cluster: string): string => `${CLUSTERS}${cluster}/`;
export const endpointsPrefix = (cluster: string): string => `${CLUSTERS}${cluster}/endpoints/`;
export const endpointKey = (cluster: string, namespace: string, pod: string): string =>
  `${endpointsPrefix(cluster)}${namespace}/${pod}`;
export const policyKey = (name: string): string => `${POLICIES}${name}`;

/** What a key under /palisade/ is (the layout above); `other` for anything else. */
export type StoreKey =
  | { readonly kind: 'cluster'; readonly cluster: string }
  | { readonly kind: 'gateway'; readonly cluster: string }
  | {
      readonly kind: 'endpoint';
      readonly cluster: string;
      readonly namespace: string;
      readonly name: string;
    }
  | { readonly kind: 'policy'; readonly name: string }
  | { readonly kind: 'epoch' }
  | { readonly kind: 'other' };

export function parseStoreKey(key: string): StoreKey {
  if (key === EPOCH) return { kind: 'epoch' };
  if (key.startsWith(POLICIES)) {
    const name = key.slice(POLICIES.length);
    return name.length > 0 && !name.includes('/') ? { kind: 'policy', name } : { kind: 'other' };
  }
  if (!key.startsWith(CLUSTERS)) return { kind: 'other' };
  const parts = key.slice(CLUSTERS.length).split('/');
  const [cluster, kind, namespace, name] = parts;
  if (!cluster) return { kind: 'other' };
  if (parts.length === 2 && kind === 'cluster') return { kind: 'cluster', cluster };
  if (parts.length === 2 && kind === 'gateway') return { kind: 'gateway', cluster };
  if (parts.length === 4 && kind === 'endpoints' && namespace && name)
    return { kind: 'endpoint', cluster, namespace, name };
  return { kind: 'other' };
}

/** One key as read from the store. */
export interface StoreEntry {
  readonly key: string;
  readonly value: Buffer;
  readonly modRevision: string;
}

const entryOf = (kv: IKeyValue): StoreEntry => ({
  key: kv.key.toString(),
  value: kv.value,
  modRevision: String(kv.mod_revision),
});

/** Watch callbacks: changes in order; `onError` when etcd cancelled the watch (compaction). */
export interface StoreWatchHandlers {
  readonly onPut: (e: StoreEntry) => void;
  readonly onDelete: (key: string, modRevision: string) => void;
  /** After each batch of events, with the revision the watch has reached. */
  readonly onProgress?: (revision: string) => void;
  readonly onConnected?: () => void;
  readonly onDisconnected?: (err: Error) => void;
  /** The watch ended for good (e.g. its start revision was compacted): re-read everything. */
  readonly onError: (err: Error) => void;
}

export interface MeshSnapshot {
  readonly epoch: number;
  /** When the current epoch began (ms since the Unix epoch; 0 = never rotated). */
  readonly epochStartedAtMs: number;
  readonly members: readonly Member[];
  /** Records that could not be read, by key (never silently ignored). */
  readonly errors: readonly string[];
}

export { checkClusterName };

function parseMember(
  name: string,
  cluster: unknown,
  gateway: unknown,
  joinRevision: number,
): Member {
  const c = cluster as ClusterRecord;
  const g = gateway as GatewayRecord;
  const strs = (v: unknown, f: string): string[] => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
      throw new Error(`${f} must be a list of strings`);
    return v as string[];
  };
  if (typeof c !== 'object' || c === null || c.name !== name)
    throw new Error('cluster record: name does not match its key');
  if (typeof g !== 'object' || g === null || typeof g.endpointHost !== 'string')
    throw new Error('gateway record: endpointHost missing');
  if (!Array.isArray(g.keys)) throw new Error('gateway record: keys must be a list');
  return {
    name,
    labels: c.labels ?? {},
    podCIDRs: strs(c.podCIDRs, 'podCIDRs'),
    serviceCIDRs: strs(c.serviceCIDRs, 'serviceCIDRs'),
    nodeCIDRs: strs(c.nodeCIDRs, 'nodeCIDRs'),
    endpointHost: g.endpointHost,
    keys: g.keys.map((k, i) => {
      if (!Number.isInteger(k.epoch) || !Number.isInteger(k.port))
        throw new Error(`gateway record: keys[${i}] needs integer epoch and port`);
      return {
        epoch: k.epoch,
        port: k.port,
        publicKey: parsePublicKey(k.publicKey, `gateway record keys[${i}].publicKey`),
      };
    }),
    routesEpoch: Number.isInteger(g.routesEpoch) ? g.routesEpoch : 0,
    joinRevision,
  };
}

export class MeshStore {
  private lease: Lease | null = null;
  private own: { cluster: ClusterRecord; gateway: GatewayRecord; ttl: number } | null = null;
  private closed = false;

  private constructor(readonly client: Etcd3) {}

  static connect(endpoints: readonly string[], timeoutMs = 3000): MeshStore {
    return new MeshStore(
      new Etcd3({
        hosts: [...endpoints],
        dialTimeout: timeoutMs,
        defaultCallOptions: () => ({ deadline: Date.now() + timeoutMs }),
      }),
    );
  }

  /** Publishes our records under a fresh lease, re-granted if it is ever lost. */
  async join(cluster: ClusterRecord, gateway: GatewayRecord, ttlSec: number): Promise<void> {
    checkClusterName(cluster.name);
    this.own = { cluster, gateway, ttl: ttlSec };
    await this.grant();
  }

  private async grant(): Promise<void> {
    const own = this.own;
    if (!own || this.closed) return;
    const lease = this.client.lease(own.ttl, { autoKeepAlive: true });
    lease.on('lost', () => {
      if (this.lease === lease && !this.closed) {
        this.lease = null;
        setTimeout(() => void this.grant().catch(() => undefined), 500);
      }
    });
    await lease.grant();
    this.lease = lease;
    await lease.put(`${CLUSTERS}${own.cluster.name}/cluster`).value(JSON.stringify(own.cluster));
    await lease.put(`${CLUSTERS}${own.cluster.name}/gateway`).value(JSON.stringify(own.gateway));
  }

  async updateGateway(gateway: GatewayRecord): Promise<void> {
    if (!this.own || !this.lease) throw new Error('mesh store: not joined');
    this.own = { ...this.own, gateway };
    await this.lease
      .put(`${CLUSTERS}${this.own.cluster.name}/gateway`)
      .value(JSON.stringify(gateway));
  }

  /** Stops keeping our records alive without deleting them (they age out after the TTL). */
  abandon(): void {
    const l = this.lease;
    this.lease = null;
    this.own = null;
    l?.release();
  }

  /** Removes our records now. */
  async leave(): Promise<void> {
    const l = this.lease;
    this.lease = null;
    this.own = null;
    if (l) await l.revoke().catch(() => undefined);
  }

  async snapshot(): Promise<MeshSnapshot> {
    const res = await this.client.getAll().prefix(CLUSTERS).exec();
    const byName = new Map<string, { cluster?: unknown; gateway?: unknown; rev: number }>();
    const errors: string[] = [];
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      const [name, kind] = key.slice(CLUSTERS.length).split('/');
      if (!name || (kind !== 'cluster' && kind !== 'gateway')) continue;
      const e = byName.get(name) ?? { rev: Number.MAX_SAFE_INTEGER };
      try {
        e[kind] = JSON.parse(kv.value.toString());
      } catch {
        errors.push(`${key}: not JSON`);
      }
      if (kind === 'cluster') e.rev = Number(kv.create_revision);
      byName.set(name, e);
    }
    const members: Member[] = [];
    for (const [name, e] of [...byName].sort(([a], [b]) => a.localeCompare(b))) {
      if (e.cluster === undefined || e.gateway === undefined) continue; // half-written join
      try {
        members.push(parseMember(name, e.cluster, e.gateway, e.rev));
      } catch (err) {
        errors.push(`${CLUSTERS}${name}: ${(err as Error).message}`);
      }
    }
    const e = await this.epochInfo();
    return { epoch: e.epoch, epochStartedAtMs: e.startedAtMs, members, errors };
  }

  async epochInfo(): Promise<{ epoch: number; startedAtMs: number }> {
    const v = await this.client.get(EPOCH).string();
    let rec: { epoch?: unknown; startedAtMs?: unknown } = {};
    try {
      rec = v === null ? {} : (JSON.parse(v) as typeof rec);
    } catch {
      rec = {};
    }
    const n = Number(rec.epoch ?? 0);
    const t = Number(rec.startedAtMs ?? 0);
    return {
      epoch: Number.isInteger(n) && n >= 0 ? n : 0,
      startedAtMs: Number.isFinite(t) ? t : 0,
    };
  }

  async epoch(): Promise<number> {
    return (await this.epochInfo()).epoch;
  }

  /**
   * Starts a mesh-wide key rotation: epoch + 1 (compare-and-swap, so concurrent
   * requests make one step). With `ifEpoch`, only if the epoch is still that one
   * (scheduled rotation: every gateway may ask, one step happens).
   */
  async bumpEpoch(ifEpoch?: number): Promise<number> {
    for (let i = 0; i < 5; i++) {
      const cur = await this.client.get(EPOCH).exec();
      const kv = cur.kvs[0];
      const epoch = kv ? Number(JSON.parse(kv.value.toString()).epoch) : 0;
      if (ifEpoch !== undefined && epoch !== ifEpoch) return epoch;
      const next = JSON.stringify({ epoch: epoch + 1, startedAtMs: Date.now() });
      const txn = kv
        ? this.client.if(EPOCH, 'Mod', '==', Number(kv.mod_revision))
        : this.client.if(EPOCH, 'Create', '==', 0);
      const r = await txn.then(this.client.put(EPOCH).value(next)).commit();
      if (r.succeeded) return epoch + 1;
    }
    throw new Error('mesh store: epoch changed concurrently five times; try again');
  }

  /** Calls `onChange` (debounced) with a fresh snapshot after any change under /palisade/. Returns a stop function. */
  async watch(onChange: (s: MeshSnapshot) => void, debounceMs = 50): Promise<() => Promise<void>> {
    let timer: NodeJS.Timeout | null = null;
    const fire = (): void => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        this.snapshot().then(onChange, () => undefined);
      }, debounceMs);
    };
    const w = await this.client.watch().prefix(ROOT).create();
    w.on('put', fire).on('delete', fire).on('connected', fire);
    return async () => {
      if (timer) clearTimeout(timer);
      await w.cancel();
    };
  }

  /** Every key under /palisade/ at one revision (the revision to watch from is revision + 1). */
  async readAll(): Promise<{ revision: string; entries: StoreEntry[] }> {
    const res = await this.client.getAll().prefix(ROOT).exec();
    return { revision: String(res.header.revision), entries: res.kvs.map(entryOf) };
  }

  /**
   * Watches /palisade/ from `fromRevision` (inclusive). etcd3 reconnects by
   * itself, resuming after the last revision it saw; a start revision that
   * was compacted meanwhile cancels the watch (`onError`): the caller must
   * re-read. Returns a stop function.
   */
  async watchFrom(fromRevision: string, h: StoreWatchHandlers): Promise<() => Promise<void>> {
    const w: Watcher = await this.client.watch().prefix(ROOT).startRevision(fromRevision).create();
    w.on('data', (res) => {
      for (const ev of res.events) {
        const e = entryOf(ev.kv);
        if (ev.type === 'Put') h.onPut(e);
        else h.onDelete(e.key, e.modRevision);
      }
      h.onProgress?.(String(res.header.revision));
    });
    w.on('connected', () => h.onConnected?.());
    w.on('disconnected', (err: Error) => h.onDisconnected?.(err));
    w.on('error', (err: Error) => h.onError(err));
    return async () => {
      await w.cancel().catch(() => undefined);
    };
  }

  /**
   * Writes and deletes keys in transactions of at most `batchSize` operations
   * (etcd's default limit is 128 per txn), puts under `lease` ('0' = none).
   */
  async writeBatch(
    puts: readonly (readonly [string, string])[],
    deletes: readonly string[],
    lease: string,
    batchSize = 64,
  ): Promise<void> {
    const ops = [
      ...deletes.map((k) => ({ request_delete_range: { key: Buffer.from(k) } })),
      ...puts.map(([k, v]) => ({
        request_put: { key: Buffer.from(k), value: Buffer.from(v), lease },
      })),
    ];
    for (let i = 0; i < ops.length; i += batchSize) {
      await this.client.kv.txn({ compare: [], success: ops.slice(i, i + batchSize) });
    }
  }

  async putPolicy(name: string, document: unknown): Promise<void> {
    await this.client.put(`${POLICIES}${name}`).value(JSON.stringify(document));
  }

  async policies(): Promise<Map<string, unknown>> {
    const all = await this.client.getAll().prefix(POLICIES).strings();
    return new Map(
      Object.entries(all).map(([k, v]) => [k.slice(POLICIES.length), JSON.parse(v) as unknown]),
    );
  }

  async deletePolicy(name: string): Promise<void> {
    await this.client.delete().key(`${POLICIES}${name}`);
  }

  /** Deletes a cluster's records (clean-up after a manager that died without `down`). */
  async deleteCluster(name: string): Promise<void> {
    checkClusterName(name);
    await this.client.delete().prefix(`${CLUSTERS}${name}/`);
  }

  close(): void {
    this.closed = true;
    this.abandon();
    this.client.close();
  }
}
