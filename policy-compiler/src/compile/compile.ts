/**
 * The full compile: world (+ the previous numbering) → encoded tables, side
 * metadata for the simulator and explanations, and the numbering to pass to
 * the next compile. Pure: no I/O, no clock. Errors (bad input, capacity) are
 * returned as values; nothing partial is ever returned.
 */
import type { CompiledEndpoint, CompiledTable, EncodedTables } from '../compiled.js';
import type { RuleRef } from '../engine.js';
import { nodeId, podId, type EndpointId } from '../model/endpoint.js';
import type { Direction } from '../model/policy.js';
import type { Node, World } from '../model/world.js';
import { PAL } from '../encode/layout.js';
import { AddressError, parseAddress, parsePrefix } from './addr.js';
import { allocateNumbers, type Numbering } from './allocate.js';
import { allocate, IdentityError, type IdentityInfo, type IdentityResult } from './identities.js';
import { buildIpcache, encodeIpcache, IpcacheLpm } from './ipcache.js';
import {
  allocateCookies,
  classBuilder,
  compilePolicies,
  labelLookups,
  type ClassBuilder,
  type CPolicy,
  type CRule,
  type Labelled,
  type PeerMatcher,
  type SubjectClass,
} from './program.js';
import { TableMemo } from './table-memo.js';
import { planTable, type KeyCache, type SetTextCache, type TemplateCache } from './tables.js';
import {
  matcherKey,
  namedKey,
  namedNames,
  type MatchEntry,
  type NamedEntry,
  type TableRecord,
} from './deps.js';

/** Map sizes the compiler must fit in (defaults: bpf/include/palisade.h). */
export interface Limits {
  /** Endpoints per node (pal_endpoints is per node). */
  readonly endpoints: number;
  readonly ipcache: number;
  readonly tables: number;
  readonly tableEntries: number;
  readonly cookies: number;
}

export const DEFAULT_LIMITS: Limits = {
  endpoints: PAL.MAX_ENDPOINTS,
  ipcache: PAL.MAX_IPCACHE,
  tables: PAL.MAX_TABLES,
  tableEntries: PAL.MAX_TABLE_ENTRIES,
  cookies: PAL.MAX_COOKIES,
};

/** The numbering a compile hands to the next one, so unchanged things keep their numbers. */
export interface Allocation {
  readonly identities: Numbering;
  readonly tables: Numbering;
  readonly cookies: Numbering;
  /** Node numbers (pal_ipcache_value.node_id); absent = number afresh. */
  readonly nodes?: Numbering;
}

export interface CompileOptions {
  readonly limits?: Partial<Limits>;
  readonly previous?: Allocation;
  /** Addresses of other clusters get PAL_IPC_F_REMOTE_CLUSTER; null = no cluster is remote. */
  readonly localCluster?: string | null;
}

export type CompileError =
  | {
      readonly kind: 'capacity';
      readonly map: 'endpoints' | 'ipcache' | 'policy' | 'policy-table' | 'cookies';
      /** What overflowed: a table (with its subject class), a node, or the whole map. */
      readonly subject: string;
      readonly count: number;
      readonly limit: number;
      readonly message: string;
    }
  | { readonly kind: 'input'; readonly message: string };

export interface EndpointAddresses {
  readonly kind: 'pod' | 'node';
  /** The addresses probes use (hostNetwork pods: their node's, as the reference). */
  readonly v4: string | null;
  readonly v6: string | null;
}

export interface TableMeta {
  readonly table: number;
  readonly direction: Direction;
  readonly cluster: string;
  /** Subject class key (policies, exempt node, named ports). */
  readonly subject: string;
  /** NetworkPolicies isolating the subjects in this direction (default decisions name them). */
  readonly isolatedBy: readonly { readonly namespace: string; readonly name: string }[];
  readonly hasAudit: boolean;
  /** Pods using this table. */
  readonly members: number;
}

/** What the compiled side keeps beside the BPF maps (never loaded into the kernel). */
export interface CompiledMeta {
  readonly endpoints: ReadonlyMap<EndpointId, EndpointAddresses>;
  readonly tables: ReadonlyMap<number, TableMeta>;
  readonly identities: ReadonlyMap<number, IdentityInfo>;
}

export interface CompileStats {
  readonly identities: number;
  readonly ipcacheEntries: number;
  readonly endpoints: number;
  readonly tables: number;
  readonly policyEntries: number;
  readonly maxTableEntries: number;
  readonly cookies: number;
}

export interface Compiled {
  readonly encoded: EncodedTables;
  readonly meta: CompiledMeta;
  readonly allocation: Allocation;
  readonly stats: CompileStats;
}

export type CompileResult =
  | { readonly ok: true; readonly compiled: Compiled }
  | { readonly ok: false; readonly error: CompileError };

function capacity(
  map: Extract<CompileError, { kind: 'capacity' }>['map'],
  subject: string,
  count: number,
  limit: number,
): CompileResult {
  return {
    ok: false,
    error: {
      kind: 'capacity',
      map,
      subject,
      count,
      limit,
      message: `${map} map: ${subject} needs ${count} entries, limit ${limit}; the previous tables stay in force`,
    },
  };
}

function familyAddr(ips: readonly string[], family: 4 | 6): string | null {
  for (const t of ips) {
    try {
      if (parseAddress(t).family === family) return t;
    } catch {
      /* reported by the identity allocator */
    }
  }
  return null;
}

/** One table (its class and entries), reusable across compiles when its inputs are equal. */
export interface TableWork {
  readonly cls: SubjectClass;
  readonly entries: CompiledTable['entries'];
}

/** A memo of table entries by a fingerprint of everything they depend on (incremental compiles). */
export { TableMemo };

/**
 * What one compile leaves for the next (recompile), reused only where its
 * inputs are the same objects: compiled policies, cookies and subject
 * classes when the policies, namespaces and clusters are unchanged; peer
 * matcher sets when, in addition, only identities were added or removed
 * (each set is then updated for those identities only; an unchanged set is
 * the same Set object, so its fingerprint text is reused too).
 */
export interface CompileCache {
  readonly world: World;
  readonly cookies: Map<string, number>;
  readonly cps: readonly CPolicy[];
  readonly nps: readonly CPolicy[];
  readonly L: Labelled;
  readonly classes: ClassBuilder;
  /** Identities by number, as the sets below were computed for. */
  readonly byNumber: ReadonlyMap<number, IdentityInfo>;
  readonly matchers: ReadonlyMap<string, MatchEntry>;
  readonly setTexts: SetTextCache;
  /**
   * The identity allocation of `seedWorld` (the world this compile was a full
   * or general compile of): what a pod-only recompile builds its index from.
   * A pod-only recompile keeps it as it was, so it never describes a later world.
   */
  readonly seed: { readonly world: World; readonly ids: IdentityResult };
  /** Per table: its class, fingerprint and the matcher / named-target sets it reads. */
  readonly tables: ReadonlyMap<number, TableRecord>;
  /** Named-port target sets of egress rules, by namedKey(). */
  readonly named: ReadonlyMap<string, NamedEntry>;
  /** Encoded policy keys shared by all tables (keys are never mutated). */
  readonly keyCache: KeyCache;
  /**
   * The world the shared mutable parts (matchers, named, tables, kept by the
   * fast paths' index) describe now. A cache whose `world` is not
   * `live.current` is an older state's: compile() does not reuse its sets.
   */
  readonly live: { current: World };
}

/** Counts of work a compile did (tests check that a small change does little). */
export interface CompileWork {
  matchersEvaluated: number;
  matchersUpdated: number;
  matchersReused: number;
  policiesReused: boolean;
  /**
   * 'pods': the pod path (compile/pod-changes.ts); 'policies': the policy path
   * (compile/policy-changes.ts); 'general': compile() with reuse.
   */
  path: 'pods' | 'policies' | 'general';
  /** Pods the pod-only path recomputed (0 on the general path). */
  podsRecomputed: number;
}

const sameScope = (a: World, b: World): boolean =>
  a.clusterPolicies === b.clusterPolicies &&
  a.networkPolicies === b.networkPolicies &&
  a.namespaces === b.namespaces &&
  a.clusters === b.clusters;

/** An identity whose matcher answers may differ: new, gone, or a node with other labels. */
function identityChanged(a: IdentityInfo | undefined, b: IdentityInfo | undefined): boolean {
  if (a === undefined || b === undefined) return a !== b;
  if (a.number !== b.number) return true;
  return a.kind === 'node' && JSON.stringify(a.labels) !== JSON.stringify(b.labels);
}

export function compile(
  world: World,
  options: CompileOptions = {},
  memo?: {
    readonly read: TableMemo | undefined;
    readonly write: TableMemo;
    readonly cache?: CompileCache | undefined;
    /** Receives this compile's cache (on success). */
    readonly keep?: (c: CompileCache) => void;
    readonly work?: CompileWork;
  },
): CompileResult {
  const limits: Limits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) };
  const previous = options.previous;
  let ids;
  try {
    ids = allocate(world, previous?.identities, previous?.nodes);
  } catch (e) {
    if (e instanceof IdentityError || e instanceof AddressError)
      return { ok: false, error: { kind: 'input', message: e.message } };
    throw e;
  }
  const prevCache = memo?.cache;
  const reusePolicies =
    prevCache !== undefined &&
    sameScope(prevCache.world, world) &&
    previous?.cookies === prevCache.cookies;
  // The matcher sets (and their texts) are kept up to date by the fast paths
  // for the newest state only.
  const reuseSets = reusePolicies && prevCache.live.current === prevCache.world;
  const canon = (text: string): string => parsePrefix(text).text;
  const L = reusePolicies ? prevCache.L : labelLookups(world, canon);
  const cookies = reusePolicies ? prevCache.cookies : allocateCookies(world, previous?.cookies);
  if (cookies.size > 0) {
    const max = Math.max(...cookies.values());
    if (max >= limits.cookies) return capacity('cookies', 'rule cookies', max + 1, limits.cookies);
  }
  const { cps, nps } = reusePolicies
    ? { cps: prevCache.cps, nps: prevCache.nps }
    : compilePolicies(world, cookies, L);
  if (memo?.work !== undefined) memo.work.policiesReused = reusePolicies;
  const refs = new Map<number, RuleRef>();
  for (const p of [...cps, ...nps])
    for (const r of [...p.rules.Ingress, ...p.rules.Egress]) refs.set(r.cookie, r.ref);

  // ---- ipcache
  const records = buildIpcache(ids, options.localCluster ?? null);
  if (records.length > limits.ipcache)
    return capacity('ipcache', 'all addresses and policy prefixes', records.length, limits.ipcache);
  const lpm = new IpcacheLpm(records);

  // ---- subject classes
  const classes =
    reusePolicies && prevCache.classes.size() <= 2 * world.pods.length + 1024
      ? prevCache.classes
      : classBuilder(world, cps, nps, L);
  const nodes = new Map<string, Node>(world.nodes.map((n) => [nodeId(n), n]));
  const podClasses: {
    id: string;
    egress: SubjectClass;
    ingress: SubjectClass;
    identity: number;
    flags: number;
    node: string | null;
    nodeNumber: number;
  }[] = [];
  for (const pod of world.pods) {
    const id = podId(pod);
    const node =
      pod.nodeName === null ? null : nodeId({ cluster: pod.cluster, name: pod.nodeName });
    const nodeNumber = node === null ? 0 : (ids.nodeNumbers.get(node) ?? 0);
    if (pod.hostNetwork) {
      const n = node === null ? undefined : nodes.get(node);
      const ips = n !== undefined && n.ips.length > 0 ? n.ips : pod.ips;
      let identity: number = PAL.ID_WORLD;
      if (ips.length > 0) {
        try {
          identity = lpm.lookup(parseAddress(ips[0] as string).n)?.identity ?? PAL.ID_WORLD;
        } catch (e) {
          return { ok: false, error: { kind: 'input', message: `${id}: ${(e as Error).message}` } };
        }
      }
      podClasses.push({
        id,
        egress: classes.unpoliced(pod.cluster, 'Egress'),
        ingress: classes.unpoliced(pod.cluster, 'Ingress'),
        identity,
        flags: PAL.EP_F_POLICY_READY | PAL.EP_F_HOST_NETWORK,
        node,
        nodeNumber,
      });
      continue;
    }
    const egress = classes.classOf(pod, 'Egress');
    const ingress = classes.classOf(pod, 'Ingress');
    let flags: number = PAL.EP_F_POLICY_READY;
    if (egress.program.isolatedBy.length > 0) flags |= PAL.EP_F_EGRESS_ISOLATED;
    if (ingress.program.isolatedBy.length > 0) flags |= PAL.EP_F_INGRESS_ISOLATED;
    if (egress.program.hasAudit) flags |= PAL.EP_F_EGRESS_AUDIT;
    if (ingress.program.hasAudit) flags |= PAL.EP_F_INGRESS_AUDIT;
    podClasses.push({
      id,
      egress,
      ingress,
      identity: ids.identities.get(ids.endpointKeys.get(id) as string)?.number as number,
      flags,
      node,
      nodeNumber,
    });
  }
  const perNode = new Map<string, number>();
  for (const p of podClasses)
    if (p.node !== null) perNode.set(p.node, (perNode.get(p.node) ?? 0) + 1);
  for (const [node, count] of [...perNode].sort()) {
    if (count > limits.endpoints)
      return capacity('endpoints', `node ${node}`, count, limits.endpoints);
  }

  const classByKey = new Map<string, SubjectClass>();
  const members = new Map<string, number>();
  for (const p of podClasses) {
    for (const c of [p.egress, p.ingress]) {
      classByKey.set(c.key, c);
      members.set(c.key, (members.get(c.key) ?? 0) + 1);
    }
  }
  const tableNumbers = allocateNumbers(classByKey.keys(), previous?.tables, 0);
  const maxTable = tableNumbers.size === 0 ? -1 : Math.max(...tableNumbers.values());
  if (maxTable >= limits.tables)
    return capacity('policy', 'subject classes × directions', maxTable + 1, limits.tables);

  // ---- tables
  const byKind = new Map<string, IdentityInfo[]>();
  // Pod identities per namespace, for matchers scoped to one (NetworkPolicy own-namespace peers).
  const podsByNs = new Map<string, IdentityInfo[]>();
  for (const id of [...ids.identities.values()].sort((a, b) => a.number - b.number)) {
    const list = byKind.get(id.kind) ?? [];
    list.push(id);
    byKind.set(id.kind, list);
    if (id.kind === 'pod') {
      const k = `${id.cluster}/${id.namespace}`;
      const l = podsByNs.get(k);
      if (l === undefined) podsByNs.set(k, [id]);
      else l.push(id);
    }
  }
  const candidates = (m: PeerMatcher): readonly IdentityInfo[] =>
    m.scope === undefined
      ? (byKind.get(m.kind) ?? [])
      : (podsByNs.get(`${m.scope.cluster}/${m.scope.namespace}`) ?? []);
  // Peer matcher sets: with the same policies and scope, the previous
  // compile's sets updated for the identities that changed (copy on write).
  const matchMemo = new Map<string, MatchEntry>();
  let changedIds: { gone: number[]; added: IdentityInfo[] } | null = null;
  if (reuseSets) {
    const gone: number[] = [];
    const added: IdentityInfo[] = [];
    const prevByKey = new Map<string, IdentityInfo>();
    for (const old of prevCache.byNumber.values()) {
      prevByKey.set(old.key, old);
      if (identityChanged(old, ids.identities.get(old.key))) gone.push(old.number);
    }
    for (const [k, now] of ids.identities) {
      if (identityChanged(prevByKey.get(k), now)) added.push(now);
    }
    changedIds = { gone, added };
  }
  const work = memo?.work;
  const matchedFor =
    (cluster: string, used: Set<string>) =>
    (m: PeerMatcher): ReadonlySet<number> => {
      const k = matcherKey(m, cluster);
      used.add(k);
      let hit = matchMemo.get(k);
      if (hit === undefined) {
        const prev = changedIds === null ? undefined : prevCache?.matchers.get(k);
        if (prev !== undefined && changedIds !== null) {
          let set = prev.set;
          const copy = (): Set<number> => (set === prev.set ? (set = new Set(prev.set)) : set);
          for (const n of changedIds.gone) if (set.has(n)) copy().delete(n);
          if (m.kind !== 'never')
            for (const id of changedIds.added)
              if (id.kind === m.kind && m.match(id, cluster)) copy().add(id.number);
          if (work !== undefined) {
            if (set === prev.set) work.matchersReused++;
            else work.matchersUpdated++;
          }
          hit = { m, cluster, set };
        } else {
          const set = new Set<number>();
          if (m.kind !== 'never')
            for (const id of candidates(m)) if (m.match(id, cluster)) set.add(id.number);
          if (work !== undefined) work.matchersEvaluated++;
          hit = { m, cluster, set };
        }
        matchMemo.set(k, hit);
      }
      return hit.set;
    };
  // Egress rules with named ports: pod identities they match with a port of one of their names.
  const namedMemo = new Map<string, NamedEntry>();
  const namedTargetsFor =
    (cluster: string, used: Set<string>) =>
    (r: CRule): ReadonlySet<number> => {
      const k = namedKey(r, cluster);
      used.add(k);
      let hit = namedMemo.get(k);
      if (hit === undefined) {
        const names = namedNames(r);
        const set = new Set<number>();
        for (const id of byKind.get('pod') ?? []) {
          if (!id.ports.some((cp) => cp.name !== null && names.has(cp.name))) continue;
          if (r.peers === null || r.peers.some((m) => m.matchPod(id, cluster))) set.add(id.number);
        }
        hit = { cluster, names, peers: r.peers, set };
        namedMemo.set(k, hit);
      }
      return hit.set;
    };
  const templateCache: TemplateCache = new Map();
  // Texts of unchanged sets (same objects) stay valid: a set's text depends on
  // its numbers and their identities' named ports, both fixed by the keys.
  const setTextCache: SetTextCache =
    reuseSets && changedIds !== null ? prevCache.setTexts : new WeakMap();
  const keyCache: KeyCache = reuseSets ? prevCache.keyCache : new Map();
  const tableRecs = new Map<number, TableRecord>();
  const tables: CompiledTable[] = [];
  const tableMeta = new Map<number, TableMeta>();
  let policyEntries = 0;
  let maxEntries = 0;
  const sortedClasses = [...classByKey.values()].sort(
    (a, b) => (tableNumbers.get(a.key) as number) - (tableNumbers.get(b.key) as number),
  );
  for (const cls of sortedClasses) {
    const table = tableNumbers.get(cls.key) as number;
    const usedMatchers = new Set<string>();
    const usedNamed = new Set<string>();
    const plan = planTable({
      program: cls.program,
      byNumber: ids.byNumber,
      templateCache,
      setTextCache,
      keyCache,
      matched: matchedFor(cls.program.cluster, usedMatchers),
      namedTargets: namedTargetsFor(cls.program.cluster, usedNamed),
    });
    let entries = memo?.read?.get(plan);
    if (entries === undefined) entries = plan.build().entries;
    const fp = memo === undefined ? plan.fingerprint : memo.write.set(plan, entries);
    tableRecs.set(table, { cls, fp, matchers: [...usedMatchers], named: [...usedNamed] });
    if (entries.length > limits.tableEntries)
      return capacity(
        'policy-table',
        `table ${table} (${cls.key})`,
        entries.length,
        limits.tableEntries,
      );
    policyEntries += entries.length;
    maxEntries = Math.max(maxEntries, entries.length);
    tables.push({ table, entries });
    const p = cls.program;
    tableMeta.set(table, {
      table,
      direction: p.direction,
      cluster: p.cluster,
      subject: cls.key,
      isolatedBy: p.isolatedBy,
      hasAudit: p.hasAudit,
      members: members.get(cls.key) as number,
    });
  }

  // ---- endpoints and their addresses
  const endpoints: CompiledEndpoint[] = podClasses.map((p) => ({
    endpoint: p.id,
    identity: p.identity,
    egressTable: tableNumbers.get(p.egress.key) as number,
    ingressTable: tableNumbers.get(p.ingress.key) as number,
    flags: p.flags,
    nodeId: p.nodeNumber,
  }));
  const addrMeta = new Map<EndpointId, EndpointAddresses>();
  for (const pod of world.pods) {
    const n =
      pod.nodeName === null
        ? undefined
        : nodes.get(nodeId({ cluster: pod.cluster, name: pod.nodeName }));
    const ips = pod.hostNetwork && n !== undefined && n.ips.length > 0 ? n.ips : pod.ips;
    addrMeta.set(podId(pod), { kind: 'pod', v4: familyAddr(ips, 4), v6: familyAddr(ips, 6) });
  }
  for (const n of world.nodes)
    addrMeta.set(nodeId(n), { kind: 'node', v4: familyAddr(n.ips, 4), v6: familyAddr(n.ips, 6) });

  const ipcache = encodeIpcache(records);
  const encoded: EncodedTables = { ipcache, endpoints, tables, cookies: refs };
  memo?.keep?.({
    world,
    cookies,
    cps,
    nps,
    L,
    classes,
    byNumber: ids.byNumber,
    matchers: matchMemo,
    setTexts: setTextCache,
    seed: { world, ids },
    tables: tableRecs,
    named: namedMemo,
    keyCache,
    live: { current: world },
  });
  return {
    ok: true,
    compiled: {
      encoded,
      meta: { endpoints: addrMeta, tables: tableMeta, identities: ids.byNumber },
      allocation: {
        identities: ids.numbering,
        tables: tableNumbers,
        cookies,
        nodes: ids.nodeNumbers,
      },
      stats: {
        identities: ids.identities.size,
        ipcacheEntries: ipcache.length,
        endpoints: endpoints.length,
        tables: tables.length,
        policyEntries,
        maxTableEntries: maxEntries,
        cookies: refs.size,
      },
    },
  };
}
