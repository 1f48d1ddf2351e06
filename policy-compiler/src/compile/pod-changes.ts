/**
 * The pod-only recompile: when only pods changed (policies, namespaces,
 * clusters and nodes are the same objects) and the change creates or
 * deletes no identity and no subject class, the new compile differs from
 * the previous one only in the changed pods' ipcache and endpoint entries
 * and in the member counts of their tables. This path computes exactly
 * those, in time proportional to the changed pods (plus one pointer scan of
 * the pod list and copy-on-write array copies), and emits the delta
 * directly. Anything else (a new or vanished identity or class, a
 * hostNetwork pod, an address conflict, an address that is also a policy
 * /32 or /128 or a hostNetwork pod's lookup address, a capacity limit)
 * returns null and the caller takes the general path (compile() with
 * reuse), which also gives the exact error.
 *
 * The result is, byte for byte, what compile() gives for the new world with
 * the previous numbering: identity, table and cookie numbers are unchanged
 * (the same keys exist), every other pod's entries are unchanged, and each
 * changed pod's entries are computed with compile()'s formulas
 * (identities.ts PodKeyer, the same class builder).
 */
import type { CompiledEndpoint, CompiledTable, EncodedDelta, MapEntry } from '../compiled.js';
import { nodeId, podId, type EndpointId } from '../model/endpoint.js';
import type { Pod, World } from '../model/world.js';
import { encodeIpcacheKey, encodeIpcacheValue, type IpcacheValue } from '../encode/codec.js';
import { PAL } from '../encode/layout.js';
import { addressBytes, parseAddress, type Prefix } from './addr.js';
import {
  DEFAULT_LIMITS,
  type Compiled,
  type CompileCache,
  type EndpointAddresses,
  type Limits,
  type TableMemo,
  type TableMeta,
} from './compile.js';
import {
  PodKeyer,
  type IdentityDraft,
  type IdentityInfo,
  type PodIdentityKeys,
} from './identities.js';
import type { SubjectClass } from './program.js';
import {
  assembleTables,
  buildDepIndex,
  changedMembers,
  renumber,
  sameEndpoint,
  searchEntries,
  TableUpdate,
  upsertSorted,
  type DepIndex,
} from './deps.js';
import { LayeredMap } from './layered-map.js';
import type { PolicyKeyCounts } from './policy-changes.js';

/** What the index remembers of one pod. */
interface PodRecord {
  readonly id: string;
  readonly pod: Pod;
  readonly hostNetwork: boolean;
  /** Identity keys it creates (IdentityResult.podKeys). */
  readonly keys: readonly string[];
  /** Its addresses (the /128 ipcache entries it owns). */
  readonly addrs: readonly bigint[];
  readonly egressClass: string;
  readonly ingressClass: string;
  readonly node: string | null;
}

/**
 * Per-pod state kept across pod-only recompiles. Mutable, owned by the newest
 * state: `world` says which world it describes; an older state sees a
 * different world and takes the general path.
 */
export interface PodIndex {
  world: World;
  readonly keyer: PodKeyer;
  readonly pods: Map<string, PodRecord>;
  /** Identity key → pods creating it. */
  readonly keyCounts: Map<string, number>;
  /** Subject class key → pods using it (TableMeta.members). */
  readonly classCounts: Map<string, number>;
  /** Address → endpoint owning it (pods and nodes). */
  readonly owners: Map<bigint, string>;
  /** Addresses whose ipcache entry a hostNetwork pod's endpoint identity is read from. */
  readonly hostLookups: Set<bigint>;
  /** Policy prefixes of full length (a pod address overrides their entry). */
  readonly fullPrefixes: Set<bigint>;
  /** Node endpoint id → pods on it (the per-node endpoint limit). */
  readonly perNode: Map<string, number>;
  /** `cluster/namespace` → its non-hostNetwork pods (the pods a policy can select). */
  readonly nsPods: Map<string, Set<string>>;
  /** Tables and the sets they read (compile/deps.ts). */
  readonly dep: DepIndex;
  /** Policy key-set counts of the policy path (built on its first use). */
  policyKeys?: PolicyKeyCounts;
  /** Policy prefixes by canonical text, and the CIDR identity key of each. */
  readonly prefixes: Map<string, Prefix>;
  readonly prefixKeys: Map<string, string>;
}

const nsOf = (pod: Pod): string => `${pod.cluster}/${pod.namespace}`;

function addNsPod(m: Map<string, Set<string>>, pod: Pod, id: string): void {
  let s = m.get(nsOf(pod));
  if (s === undefined) m.set(nsOf(pod), (s = new Set()));
  s.add(id);
}

const podNode = (pod: Pod): string | null =>
  pod.nodeName === null ? null : nodeId({ cluster: pod.cluster, name: pod.nodeName });

const bump = (m: Map<string, number>, k: string, d: number): void => {
  m.set(k, (m.get(k) ?? 0) + d);
};

/** Builds the index of a compiled world (one pass; done on the first pod-only recompile). */
export function buildPodIndex(world: World, compiled: Compiled, cache: CompileCache): PodIndex {
  const ids = cache.seed.ids;
  const pods = new Map<string, PodRecord>();
  const keyCounts = new Map<string, number>();
  const classCounts = new Map<string, number>();
  const perNode = new Map<string, number>();
  const hostLookups = new Set<bigint>();
  const nodeIps = new Map<string, readonly string[]>(world.nodes.map((n) => [nodeId(n), n.ips]));
  const addrsOf = new Map<string, bigint[]>();
  const owners = new Map<bigint, string>();
  const nsPods = new Map<string, Set<string>>();
  for (const a of ids.addresses) {
    owners.set(a.n, a.owner);
    if (a.kind !== 'pod') continue;
    const list = addrsOf.get(a.owner);
    if (list === undefined) addrsOf.set(a.owner, [a.n]);
    else list.push(a.n);
  }
  world.pods.forEach((pod, i) => {
    const id = podId(pod);
    const ep = compiled.encoded.endpoints[i] as CompiledEndpoint;
    const node = podNode(pod);
    const keys = ids.podKeys.get(id) ?? [];
    for (const k of keys) bump(keyCounts, k, 1);
    const egressClass = (compiled.meta.tables.get(ep.egressTable) as TableMeta).subject;
    const ingressClass = (compiled.meta.tables.get(ep.ingressTable) as TableMeta).subject;
    bump(classCounts, egressClass, 1);
    bump(classCounts, ingressClass, 1);
    if (node !== null) bump(perNode, node, 1);
    if (pod.hostNetwork) {
      const nips = node === null ? undefined : nodeIps.get(node);
      const ips = nips !== undefined && nips.length > 0 ? nips : pod.ips;
      if (ips.length > 0) hostLookups.add(parseAddress(ips[0] as string).n);
    }
    if (!pod.hostNetwork) addNsPod(nsPods, pod, id);
    pods.set(id, {
      id,
      pod,
      hostNetwork: pod.hostNetwork,
      keys,
      addrs: addrsOf.get(id) ?? [],
      egressClass,
      ingressClass,
      node,
    });
  });
  const fullPrefixes = new Set<bigint>();
  for (const p of ids.prefixes.values()) if (p.len === 128) fullPrefixes.add(p.net);
  return {
    world,
    keyer: new PodKeyer(world),
    pods,
    keyCounts,
    classCounts,
    owners,
    hostLookups,
    fullPrefixes,
    perNode,
    nsPods,
    dep: buildDepIndex(cache.tables, cache.matchers, cache.named),
    prefixes: new Map(ids.prefixes),
    prefixKeys: new Map([...ids.prefixKeys].filter((e): e is [string, string] => e[1] !== null)),
  };
}

function familyAddr(ips: readonly string[], family: 4 | 6): string | null {
  for (const t of ips) if (parseAddress(t).family === family) return t;
  return null;
}

/**
 * The changed window of two lists: the first `p` and the last `s` elements
 * are the same objects. Two pointer scans: the one O(pods) pass left per
 * pod change (memory-bound: ~1 ms at 50k pods on the benchmark machine).
 */
export function changedWindow<T>(a: readonly T[], b: readonly T[]): { p: number; s: number } {
  const n = Math.min(a.length, b.length);
  let p = 0;
  while (p < n && a[p] === b[p]) p++;
  let s = 0;
  const m = n - p;
  let i = a.length - 1;
  let j = b.length - 1;
  while (s < m && a[i] === b[j]) {
    s++;
    i--;
    j--;
  }
  return { p, s };
}

/** Most pods a pod-only recompile takes on (more: the general path). */
export const MAX_CHANGED_PODS = 64;

export interface PodChangeInput {
  readonly compiled: Compiled;
  readonly cache: CompileCache;
  readonly index: PodIndex | undefined;
  /** Table entries by fingerprint (the state's memo; updated in place). */
  readonly memo: TableMemo;
  readonly limits?: Partial<Limits>;
  readonly localCluster: string | null;
}

export interface PodChangeResult {
  readonly compiled: Compiled;
  readonly cache: CompileCache;
  readonly index: PodIndex;
  readonly delta: EncodedDelta;
  readonly podsRecomputed: number;
  readonly rebuiltTables: number;
  /** Matcher and named-target sets updated (or evaluated, for a new class's rules). */
  readonly matchersUpdated: number;
}

interface NewPod {
  readonly pod: Pod;
  readonly id: string;
  readonly keys: PodIdentityKeys;
  readonly egress: SubjectClass;
  readonly ingress: SubjectClass;
  readonly node: string | null;
}

/** The pod-only recompile of `next` (see the module comment); null = take the general path. */
export function recompilePods(
  prevWorld: World,
  next: World,
  x: PodChangeInput,
): PodChangeResult | null {
  const { cache, compiled } = x;
  if (
    cache.world !== prevWorld ||
    next.clusterPolicies !== prevWorld.clusterPolicies ||
    next.networkPolicies !== prevWorld.networkPolicies ||
    next.namespaces !== prevWorld.namespaces ||
    next.clusters !== prevWorld.clusters ||
    next.nodes !== prevWorld.nodes
  )
    return null;
  // The changed window: pods outside it are the same objects at the same positions.
  const a = prevWorld.pods;
  const b = next.pods;
  const { p, s } = changedWindow(a, b);
  const oldWin = a.slice(p, a.length - s);
  const newWin = b.slice(p, b.length - s);
  if (oldWin.length + newWin.length === 0) return null;
  if (oldWin.length > MAX_CHANGED_PODS || newWin.length > MAX_CHANGED_PODS) return null;

  let index = x.index;
  if (index === undefined || index.world !== prevWorld) {
    if (cache.seed.world !== prevWorld) return null;
    index = buildPodIndex(prevWorld, compiled, cache);
  }
  const limits: Limits = { ...DEFAULT_LIMITS, ...(x.limits ?? {}) };
  const prevNumbering = compiled.allocation.identities;
  const prevTables = compiled.allocation.tables;

  const oldRecs: PodRecord[] = [];
  for (const pod of oldWin) {
    const r = index.pods.get(podId(pod));
    if (r === undefined || r.hostNetwork) return null;
    oldRecs.push(r);
  }
  const oldIds = new Set(oldRecs.map((r) => r.id));
  const newPods: NewPod[] = [];
  const newIds = new Set<string>();
  for (const pod of newWin) {
    if (pod.hostNetwork) return null;
    const id = podId(pod);
    if (newIds.has(id)) return null;
    newIds.add(id);
    // A pod outside the window with this id: the world repeats an id; let compile() decide.
    if (!oldIds.has(id) && index.pods.has(id)) return null;
    let keys: PodIdentityKeys;
    try {
      keys = index.keyer.keysOf(pod);
    } catch {
      return null; // a bad address: compile() gives the error
    }
    const egress = cache.classes.classOf(pod, 'Egress');
    const ingress = cache.classes.classOf(pod, 'Ingress');
    newPods.push({ pod, id, keys, egress, ingress, node: podNode(pod) });
  }

  // Identity keys and classes: counts per key; keys appearing get the lowest
  // free numbers (allocate()'s rule), vanishing ones free theirs.
  const keyDelta = new Map<string, number>();
  const classDelta = new Map<string, number>();
  const nodeDelta = new Map<string, number>();
  for (const r of oldRecs) {
    for (const k of r.keys) bump(keyDelta, k, -1);
    bump(classDelta, r.egressClass, -1);
    bump(classDelta, r.ingressClass, -1);
    if (r.node !== null) bump(nodeDelta, r.node, -1);
  }
  const drafts = new Map<string, IdentityDraft>();
  const newClasses = new Map<string, SubjectClass>();
  for (const n of newPods) {
    for (const k of n.keys.keys) bump(keyDelta, k, 1);
    for (const [k, d] of n.keys.drafts) drafts.set(k, d);
    bump(classDelta, n.egress.key, 1);
    bump(classDelta, n.ingress.key, 1);
    newClasses.set(n.egress.key, n.egress);
    newClasses.set(n.ingress.key, n.ingress);
    if (n.node !== null) bump(nodeDelta, n.node, 1);
  }
  const addedKeys: string[] = [];
  const vanishedKeys: string[] = [];
  for (const [k, d] of keyDelta) {
    if (d === 0) continue;
    const before = index.keyCounts.get(k) ?? 0;
    const after = before + d;
    if (after < 0 || before > 0 !== prevNumbering.has(k)) return null; // not what the index says
    if (before === 0) addedKeys.push(k);
    else if (after === 0) vanishedKeys.push(k);
  }
  const addedClasses: string[] = [];
  const vanishedClasses: string[] = [];
  for (const [k, d] of classDelta) {
    if (d === 0) continue;
    const before = index.classCounts.get(k) ?? 0;
    const after = before + d;
    if (after < 0 || before > 0 !== prevTables.has(k)) return null;
    if (before === 0) addedClasses.push(k);
    else if (after === 0) vanishedClasses.push(k);
  }
  for (const [k, d] of nodeDelta)
    if (d > 0 && (index.perNode.get(k) ?? 0) + d > limits.endpoints) return null;

  // Addresses: released by the old window, claimed by the new one.
  const released = new Set<bigint>();
  for (const r of oldRecs) for (const n of r.addrs) released.add(n);
  const claimed = new Map<bigint, string>();
  for (const np of newPods) {
    for (const ad of np.keys.addresses) {
      const other = claimed.get(ad.n);
      if (other !== undefined && other !== np.id) return null;
      const owner = index.owners.get(ad.n);
      if (owner !== undefined && !(released.has(ad.n) && oldIds.has(owner))) return null;
      claimed.set(ad.n, np.id);
    }
  }
  for (const n of [...released, ...claimed.keys()])
    if (index.hostLookups.has(n) || index.fullPrefixes.has(n)) return null;

  // ---- identities appearing / vanishing, the sets that gain / lose them, the tables reading those
  let byNumber = compiled.meta.identities;
  const addedInfos: IdentityInfo[] = [];
  const goneNums: number[] = [];
  let numbering = prevNumbering;
  if (addedKeys.length + vanishedKeys.length > 0) {
    for (const k of vanishedKeys) goneNums.push(prevNumbering.get(k) as number);
    // Taken = every number the previous identities used (freed ones wait a compile).
    numbering = renumber(prevNumbering, vanishedKeys, addedKeys, PAL.ID_FIRST_ALLOCATED, (n) =>
      byNumber.has(n),
    );
    for (const k of addedKeys) {
      const d = drafts.get(k);
      if (d === undefined) return null;
      addedInfos.push({ ...d, number: numbering.get(k) as number });
    }
    byNumber = LayeredMap.update(
      byNumber,
      addedInfos.map((i) => [i.number, i] as const),
      goneNums,
    );
  }
  const tableNumbers = renumber(prevTables, vanishedClasses, addedClasses, 0);
  for (const k of addedClasses) if ((tableNumbers.get(k) as number) >= limits.tables) return null;
  const dep = index.dep;
  const update = new TableUpdate(dep, x.memo, byNumber, cache.setTexts, cache.keyCache);
  const dirty = update.identitiesChanged(goneNums, addedInfos);
  const changedNums = new Set<number>([...goneNums, ...addedInfos.map((i) => i.number)]);
  const removedTables = new Set(vanishedClasses.map((k) => prevTables.get(k) as number));
  for (const t of dirty) {
    if (removedTables.has(t)) continue;
    const rec = dep.tables.get(t);
    if (rec === undefined) return null;
    if (update.patch(t, rec.cls, changedNums).entries.length > limits.tableEntries) return null;
  }
  for (const k of addedClasses) {
    const t = update.rebuild(tableNumbers.get(k) as number, newClasses.get(k) as SubjectClass);
    if (t.entries.length > limits.tableEntries) return null;
  }
  const members = { before: index.classCounts, delta: classDelta };
  // No table rebuilt or removed (the common case): the tables stay, only the
  // member counts of the classes pods left or joined change (a layer over the metadata).
  const sameTables = update.rebuilt.length === 0 && removedTables.size === 0;
  const asm = sameTables
    ? {
        tables: compiled.encoded.tables as CompiledTable[],
        meta: LayeredMap.update(
          compiled.meta.tables,
          [...changedMembers(members, prevTables)].map(([t, n]) => {
            const m = compiled.meta.tables.get(t) as TableMeta;
            return [t, { ...m, members: n }] as const;
          }),
        ),
        replace: [],
        patch: [],
        remove: [],
        policyEntries: compiled.stats.policyEntries,
        maxEntries: compiled.stats.maxTableEntries,
      }
    : assembleTables(
        compiled.encoded.tables,
        compiled.meta.tables,
        update.rebuilt,
        removedTables,
        members,
        prevTables,
        update.patchable,
      );

  // ---- ipcache (copy on write, sorted by key bytes)
  const num = (key: string | null): number => (key === null ? 0 : (numbering.get(key) ?? 0));
  const newRecords = new Map<bigint, Uint8Array>();
  for (const np of newPods) {
    const flags =
      x.localCluster !== null && np.pod.cluster !== x.localCluster ? PAL.IPC_F_REMOTE_CLUSTER : 0;
    for (const ad of np.keys.addresses) {
      const v: IpcacheValue = {
        identity: num(ad.key),
        nsIdentity: num(np.keys.nsKey),
        cidrIdentity: num(ad.cidrKey),
        nodeId: 0,
        flags,
      };
      newRecords.set(ad.n, encodeIpcacheValue(v));
    }
  }
  const ipcache = compiled.encoded.ipcache.slice();
  const upsertIpc: MapEntry[] = [];
  const removeIpc: Uint8Array[] = [];
  const keyOf = (n: bigint): Uint8Array =>
    encodeIpcacheKey({ prefixlen: 128, addr: addressBytes(n) });
  for (const n of released) {
    if (newRecords.has(n)) continue;
    const key = keyOf(n);
    const i = searchEntries(ipcache, key);
    if (i < 0) return null; // not what the index says: the general path
    ipcache.splice(i, 1);
    removeIpc.push(key);
  }
  for (const [n, value] of newRecords) {
    upsertSorted(ipcache, keyOf(n), value, upsertIpc);
  }
  if (ipcache.length > limits.ipcache) return null;

  // ---- endpoints (world order: the window replaced)
  const oldEps = compiled.encoded.endpoints;
  const oldWinEps = new Map<EndpointId, CompiledEndpoint>();
  for (let i = p; i < oldEps.length - s; i++) {
    const e = oldEps[i] as CompiledEndpoint;
    oldWinEps.set(e.endpoint, e);
  }
  const nodeNumbers = compiled.allocation.nodes;
  const newEps: CompiledEndpoint[] = newPods.map((np) => {
    let flags: number = PAL.EP_F_POLICY_READY;
    if (np.egress.program.isolatedBy.length > 0) flags |= PAL.EP_F_EGRESS_ISOLATED;
    if (np.ingress.program.isolatedBy.length > 0) flags |= PAL.EP_F_INGRESS_ISOLATED;
    if (np.egress.program.hasAudit) flags |= PAL.EP_F_EGRESS_AUDIT;
    if (np.ingress.program.hasAudit) flags |= PAL.EP_F_INGRESS_AUDIT;
    return {
      endpoint: np.id,
      identity: num(np.keys.primary),
      egressTable: tableNumbers.get(np.egress.key) as number,
      ingressTable: tableNumbers.get(np.ingress.key) as number,
      flags,
      nodeId: np.node === null ? 0 : (nodeNumbers?.get(np.node) ?? 0),
    };
  });
  const endpoints = oldEps.slice();
  endpoints.splice(p, oldEps.length - s - p, ...newEps);
  const upsertEp = newEps.filter((e) => {
    const o = oldWinEps.get(e.endpoint);
    return o === undefined || !sameEndpoint(o, e);
  });
  const removeEp = [...oldWinEps.keys()].filter((id) => !newIds.has(id));

  // ---- side metadata. Endpoint addresses are only read by id (simulator,
  // datapath explanations), so their order does not matter: changed pods'
  // entries go in a layer over the previous map (compile/layered-map.ts;
  // iterated after the others, where compile() has world order); when every
  // changed pod kept its addresses the map is reused as it is.
  const addrs = newPods.map((np): EndpointAddresses => ({
    kind: 'pod',
    v4: familyAddr(np.pod.ips, 4),
    v6: familyAddr(np.pod.ips, 6),
  }));
  const oldAddrs = compiled.meta.endpoints;
  let addrMeta = oldAddrs;
  const sameAddrs =
    removeEp.length === 0 &&
    newPods.every((np, i) => {
      const o = oldAddrs.get(np.id);
      const a = addrs[i] as EndpointAddresses;
      return o !== undefined && o.kind === 'pod' && o.v4 === a.v4 && o.v6 === a.v6;
    });
  if (!sameAddrs)
    addrMeta = LayeredMap.update(
      oldAddrs,
      newPods.map((np, i) => [np.id, addrs[i] as EndpointAddresses] as const),
      removeEp,
    );
  // ---- commit to the index (it now describes `next`)
  update.commit(removedTables);
  const settle = (m: Map<string, number>, k: string, d: number): void => {
    const n = (m.get(k) ?? 0) + d;
    if (n === 0) m.delete(k);
    else m.set(k, n);
  };
  for (const [k, d] of keyDelta) if (d !== 0) settle(index.keyCounts, k, d);
  for (const [k, d] of classDelta) if (d !== 0) settle(index.classCounts, k, d);
  for (const [k, d] of nodeDelta) if (d !== 0) bump(index.perNode, k, d);
  for (const n of released) index.owners.delete(n);
  for (const [n, id] of claimed) index.owners.set(n, id);
  for (const r of oldRecs) {
    index.pods.delete(r.id);
    index.nsPods.get(nsOf(r.pod))?.delete(r.id);
  }
  for (const np of newPods) addNsPod(index.nsPods, np.pod, np.id);
  for (const np of newPods)
    index.pods.set(np.id, {
      id: np.id,
      pod: np.pod,
      hostNetwork: false,
      keys: np.keys.keys,
      addrs: [...new Set(np.keys.addresses.map((ad) => ad.n))],
      egressClass: np.egress.key,
      ingressClass: np.ingress.key,
      node: np.node,
    });
  index.world = next;
  cache.live.current = next;

  const out: Compiled = {
    encoded: { ...compiled.encoded, ipcache, endpoints, tables: asm.tables },
    meta: { endpoints: addrMeta, tables: asm.meta, identities: byNumber },
    allocation: { ...compiled.allocation, identities: numbering, tables: tableNumbers },
    stats: {
      ...compiled.stats,
      identities: byNumber.size,
      ipcacheEntries: ipcache.length,
      endpoints: endpoints.length,
      tables: asm.tables.length,
      policyEntries: asm.policyEntries,
      maxTableEntries: asm.maxEntries,
    },
  };
  return {
    compiled: out,
    cache: {
      ...cache,
      world: next,
      byNumber,
      matchers: dep.matchers,
      named: dep.named,
      tables: dep.tables,
    },
    index,
    delta: {
      ipcache: { upsert: upsertIpc, remove: removeIpc },
      endpoints: { upsert: upsertEp, remove: removeEp },
      tables: { replace: asm.replace, patch: asm.patch, remove: asm.remove },
    },
    podsRecomputed: newPods.length,
    rebuiltTables: update.rebuilt.length,
    matchersUpdated: update.pendingMatchers.size + update.pendingNamed.size,
  };
}
