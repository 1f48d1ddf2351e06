/**
 * The policy recompile: when only NetworkPolicies and cluster policies
 * changed (pods, namespaces, nodes and clusters are the same objects) and
 * the change leaves every identity as it was (the label keys pod and
 * namespace/cluster selectors use, the policy prefixes and the prefixes of
 * egress named-port CIDR peers are the same sets), the new compile differs
 * from the previous one only in: the changed policies' rules and cookies;
 * the subject classes of the pods those policies select, before and after;
 * the tables of classes whose program includes a changed policy, new
 * classes, and classes no pod uses any more; those pods' endpoint entries.
 * This path computes exactly those, with compile()'s formulas (the same
 * compilePolicies, classBuilder, numbering and planTable), and emits the
 * delta directly. Anything else returns null and the caller takes the
 * general path (compile() with reuse), which also gives the exact error.
 *
 * Why the rest is unchanged: identities are a function of the pods,
 * namespaces, clusters, nodes and the key sets above; a matcher set is a
 * function of its matcher key and the identities; a pod's class is a
 * function of the policies selecting it, and a class's program of those
 * policies' compiled rules, so a class whose key names no changed policy
 * has the same program (the same CRule objects) and its table the same
 * fingerprint.
 */
import type { CompiledEndpoint, EncodedDelta, MapEntry } from '../compiled.js';
import type { RuleRef } from '../engine.js';
import type { EndpointId } from '../model/endpoint.js';
import { selectorMatches } from '../model/labels.js';
import { compareClusterPolicies } from '../model/order.js';
import type { ClusterPolicy, NetworkPolicy } from '../model/policy.js';
import type { Pod, World } from '../model/world.js';
import { PAL } from '../encode/layout.js';
import {
  DEFAULT_LIMITS,
  type Compiled,
  type CompileCache,
  type Limits,
  type TableMemo,
} from './compile.js';
import {
  assembleTables,
  renumber,
  sameEndpoint,
  searchEntries,
  TableUpdate,
  upsertSorted,
} from './deps.js';
import {
  namedEgressPrefixes,
  podSelectorKeys,
  policyPrefixes,
  PrefixSet,
  scopeSelectorKeys,
  sigText,
  type IdentityInfo,
} from './identities.js';
import {
  addressBytes,
  bytesToAddress,
  coversV4Space,
  mask,
  parsePrefix,
  type Prefix,
} from './addr.js';
import type { Numbering } from './allocate.js';
import { LayeredMap } from './layered-map.js';
import {
  compareBytes,
  decodeIpcacheKey,
  decodeIpcacheValue,
  encodeIpcacheKey,
  encodeIpcacheValue,
} from '../encode/codec.js';
import { buildPodIndex, type PodIndex } from './pod-changes.js';
import {
  classBuilder,
  compilePolicies,
  cpId,
  npId,
  npsByNamespace,
  ruleKeys,
  selectsCp,
  type CPolicy,
  type SubjectClass,
} from './program.js';

/** Most policies a policy recompile takes on (per list; more: the general path). */
export const MAX_CHANGED_POLICIES = 16;

/** How many policies use each label key / prefix that identity keys depend on. */
export interface PolicyKeyCounts {
  readonly counts: readonly Map<string, number>[];
}

const NO_POLICIES: Pick<World, 'networkPolicies' | 'clusterPolicies'> = {
  networkPolicies: [],
  clusterPolicies: [],
};

/** One policy's contribution to each key set identities depend on (throws on a bad prefix). */
function contribution(p: { np?: NetworkPolicy; cp?: ClusterPolicy }): Set<string>[] {
  const w = {
    ...NO_POLICIES,
    networkPolicies: p.np ? [p.np] : [],
    clusterPolicies: p.cp ? [p.cp] : [],
  } as unknown as World;
  const scope = scopeSelectorKeys(w);
  return [
    podSelectorKeys(w),
    scope.ns,
    scope.cluster,
    new Set(policyPrefixes(w).keys()),
    new Set(namedEgressPrefixes(w).keys()),
  ];
}

export function policyKeyCounts(world: World): PolicyKeyCounts {
  const counts = [0, 1, 2, 3, 4].map(() => new Map<string, number>());
  const add = (sets: Set<string>[]): void =>
    sets.forEach((s, i) => {
      const m = counts[i] as Map<string, number>;
      for (const k of s) m.set(k, (m.get(k) ?? 0) + 1);
    });
  for (const np of world.networkPolicies) add(contribution({ np }));
  for (const cp of world.clusterPolicies) add(contribution({ cp }));
  return { counts };
}

/** The changed window of a sorted list: elements outside it are the same objects. */
function window<T>(a: readonly T[], b: readonly T[]): { old: T[]; now: T[] } {
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  let s = 0;
  while (s < a.length - p && s < b.length - p && a[a.length - 1 - s] === b[b.length - 1 - s]) s++;
  return { old: a.slice(p, a.length - s), now: b.slice(p, b.length - s) };
}

const npOrder = (a: NetworkPolicy, b: NetworkPolicy): number => {
  const x = `${a.cluster}\u0000${a.namespace}\u0000${a.name}`;
  const y = `${b.cluster}\u0000${b.namespace}\u0000${b.name}`;
  return x < y ? -1 : x > y ? 1 : 0;
};

/** `list` without `drop`, with `add` inserted in `cmp` order; null on a tie (a repeated policy). */
function splice<T>(
  list: readonly CPolicy[],
  drop: ReadonlySet<T>,
  of: (p: CPolicy) => T,
  add: readonly CPolicy[],
  cmp: (a: T, b: T) => number,
): CPolicy[] | null {
  const out = list.filter((p) => !drop.has(of(p)));
  for (const p of add) {
    let lo = 0;
    let hi = out.length;
    const x = of(p);
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const c = cmp(of(out[mid] as CPolicy), x);
      if (c === 0) return null;
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    out.splice(lo, 0, p);
  }
  return out;
}

/** Policy ids a class key names (A:, N:, B: lists; see classBuilder). */
function classPolicies(key: string): string[] {
  const out: string[] = [];
  for (const part of key.split('|')) {
    if (part.length < 2 || part[1] !== ':' || !'ANB'.includes(part[0] as string)) continue;
    const list = part.slice(2);
    if (list !== '') out.push(...list.split(','));
  }
  return out;
}

export interface PolicyChangeInput {
  readonly compiled: Compiled;
  readonly cache: CompileCache;
  readonly index: PodIndex | undefined;
  readonly memo: TableMemo;
  readonly limits?: Partial<Limits>;
}

export interface PolicyChangeResult {
  readonly compiled: Compiled;
  readonly cache: CompileCache;
  readonly index: PodIndex;
  readonly delta: EncodedDelta;
  readonly podsRecomputed: number;
  readonly rebuiltTables: number;
  readonly matchersEvaluated: number;
}

/** Position of `pod` in the sorted pod list (World keeps it sorted), -1 if not found. */
function podPosition(pods: readonly Pod[], pod: Pod): number {
  // (cluster, namespace, name) order, compared field by field (no key strings per step).
  const cmp = (a: Pod, b: Pod): number =>
    a.cluster !== b.cluster
      ? a.cluster < b.cluster
        ? -1
        : 1
      : a.namespace !== b.namespace
        ? a.namespace < b.namespace
          ? -1
          : 1
        : a.name < b.name
          ? -1
          : a.name > b.name
            ? 1
            : 0;
  let lo = 0;
  let hi = pods.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = pods[mid] as Pod;
    if (m === pod) return mid;
    const c = cmp(m, pod);
    if (c < 0) lo = mid + 1;
    else if (c > 0) hi = mid - 1;
    else return -1;
  }
  return -1;
}

function endpointFlags(egress: SubjectClass, ingress: SubjectClass): number {
  let flags: number = PAL.EP_F_POLICY_READY;
  if (egress.program.isolatedBy.length > 0) flags |= PAL.EP_F_EGRESS_ISOLATED;
  if (ingress.program.isolatedBy.length > 0) flags |= PAL.EP_F_INGRESS_ISOLATED;
  if (egress.program.hasAudit) flags |= PAL.EP_F_EGRESS_AUDIT;
  if (ingress.program.hasAudit) flags |= PAL.EP_F_INGRESS_AUDIT;
  return flags;
}

/** The policy recompile of `next` (see the module comment); null = take the general path. */
export function recompilePolicies(
  prevWorld: World,
  next: World,
  x: PolicyChangeInput,
): PolicyChangeResult | null {
  const { cache, compiled } = x;
  if (
    cache.world !== prevWorld ||
    cache.live.current !== prevWorld ||
    next.pods !== prevWorld.pods ||
    next.namespaces !== prevWorld.namespaces ||
    next.clusters !== prevWorld.clusters ||
    next.nodes !== prevWorld.nodes
  )
    return null;
  const npw = window(prevWorld.networkPolicies, next.networkPolicies);
  const cpw = window(prevWorld.clusterPolicies, next.clusterPolicies);
  const changes = npw.old.length + npw.now.length + cpw.old.length + cpw.now.length;
  if (changes === 0) return null;
  if (
    Math.max(npw.old.length, npw.now.length, cpw.old.length, cpw.now.length) > MAX_CHANGED_POLICIES
  )
    return null;

  let index = x.index;
  if (index === undefined || index.world !== prevWorld) {
    if (cache.seed.world !== prevWorld) return null;
    index = buildPodIndex(prevWorld, compiled, cache);
  }
  const limits: Limits = { ...DEFAULT_LIMITS, ...(x.limits ?? {}) };

  // ---- identities must stay as they are: the key sets they depend on are unchanged
  index.policyKeys ??= policyKeyCounts(prevWorld);
  const keyDelta = [0, 1, 2, 3, 4].map(() => new Map<string, number>());
  const bumpAll = (sets: Set<string>[], d: number): void =>
    sets.forEach((s, i) => {
      const m = keyDelta[i] as Map<string, number>;
      for (const k of s) m.set(k, (m.get(k) ?? 0) + d);
    });
  try {
    for (const np of npw.old) bumpAll(contribution({ np }), -1);
    for (const cp of cpw.old) bumpAll(contribution({ cp }), -1);
    for (const np of npw.now) bumpAll(contribution({ np }), 1);
    for (const cp of cpw.now) bumpAll(contribution({ cp }), 1);
  } catch {
    return null; // a bad prefix: compile() gives the error
  }
  // Policy prefixes (set 3) may come and go: CIDR identities follow (below).
  // The other sets change every pod or namespace identity key: the general path.
  const addedPrefixes: Prefix[] = [];
  const removedPrefixes: Prefix[] = [];
  for (let i = 0; i < 5; i++) {
    const have = index.policyKeys.counts[i] as Map<string, number>;
    for (const [k, d] of keyDelta[i] as Map<string, number>) {
      if (d === 0) continue;
      const before = have.get(k) ?? 0;
      if (before + d < 0) return null;
      if (before > 0 && before + d > 0) continue;
      if (i !== 3) return null;
      if (before === 0) addedPrefixes.push(parsePrefix(k));
      else removedPrefixes.push(index.prefixes.get(k) as Prefix);
    }
  }
  const cidr = cidrChanges(index, compiled, addedPrefixes, removedPrefixes);
  if (cidr === 'fallback') return null;
  if (cidr !== null && cidr.ipcache.length > limits.ipcache) return null; // compile() gives the error

  // ---- cookies: the changed policies' rule keys
  const scoped = (nps: NetworkPolicy[], cps: ClusterPolicy[]): World => ({
    ...next,
    networkPolicies: nps,
    clusterPolicies: cps,
  });
  const oldRuleKeys = ruleKeys(scoped(npw.old, cpw.old));
  const newRuleKeys = ruleKeys(scoped(npw.now, cpw.now));
  const newSet = new Set(newRuleKeys);
  const oldSet = new Set(oldRuleKeys);
  const prevCookies = compiled.allocation.cookies;
  const cookies = renumber(
    prevCookies,
    oldRuleKeys.filter((k) => !newSet.has(k)),
    newRuleKeys.filter((k) => !oldSet.has(k) && !prevCookies.has(k)),
    1,
  ) as Map<string, number>;
  if (newRuleKeys.some((k) => prevCookies.has(k) && !oldSet.has(k))) return null; // a repeated policy
  let maxCookie = 0;
  for (const k of newRuleKeys) maxCookie = Math.max(maxCookie, cookies.get(k) as number);
  if (maxCookie >= limits.cookies) return null;

  // ---- compiled policies: the changed ones afresh, the rest as they were
  const fresh = compilePolicies(scoped(npw.now, cpw.now), cookies, cache.L);
  const nps = splice(cache.nps, new Set(npw.old), (p) => p.np as NetworkPolicy, fresh.nps, npOrder);
  const cps = splice(
    cache.cps,
    new Set(cpw.old),
    (p) => p.cp as ClusterPolicy,
    fresh.cps,
    compareClusterPolicies,
  );
  if (nps === null || cps === null) return null;
  const oldCompiled = [...cache.nps, ...cache.cps].filter(
    (p) => (p.np !== null && npw.old.includes(p.np)) || (p.cp !== null && cpw.old.includes(p.cp)),
  );
  const changedIds = new Set<string>([
    ...npw.old.map(npId),
    ...npw.now.map(npId),
    ...cpw.old.map(cpId),
    ...cpw.now.map(cpId),
  ]);
  // A layer over the registry (one entry per rule): the changed policies' rules only.
  const refs = LayeredMap.update<number, RuleRef>(
    compiled.encoded.cookies,
    [...fresh.nps, ...fresh.cps].flatMap((p) =>
      [...p.rules.Ingress, ...p.rules.Egress].map((r) => [r.cookie, r.ref] as const),
    ),
    oldCompiled.flatMap((p) => [...p.rules.Ingress, ...p.rules.Egress].map((r) => r.cookie)),
  );

  // ---- pods the changed policies select, before or after
  const L = cache.L;
  const affected = new Set<string>();
  for (const np of [...npw.old, ...npw.now]) {
    for (const id of index.nsPods.get(`${np.cluster}/${np.namespace}`) ?? []) affected.add(id);
  }
  const changedCps = [...cpw.old, ...cpw.now];
  if (changedCps.length > 0) {
    for (const [nsKey, ids] of index.nsPods) {
      const slash = nsKey.indexOf('/');
      const cluster = nsKey.slice(0, slash);
      const ns = nsKey.slice(slash + 1);
      const inScope = changedCps.filter(
        (cp) =>
          (cp.cluster === null || cp.cluster === cluster) &&
          (cp.subject.clusters === null ||
            selectorMatches(cp.subject.clusters, L.clusterLabels(cluster))) &&
          selectorMatches(cp.subject.namespaceSelector, L.namespaceLabels(cluster, ns)),
      );
      if (inScope.length === 0) continue;
      for (const id of ids) {
        const r = index.pods.get(id);
        if (r !== undefined && inScope.some((cp) => selectsCp(cp, r.pod, L))) affected.add(id);
      }
    }
  }

  // ---- their classes with the new policies
  // Pod selector keys are unchanged (checked above): the previous builder's.
  // The namespaces' NetworkPolicy lists: the previous ones, those of the changed policies' namespaces afresh.
  const byNs = new Map(cache.classes.npsByNs);
  const changedNs = new Set([...npw.old, ...npw.now].map((np) => `${np.cluster}/${np.namespace}`));
  for (const k of changedNs) byNs.delete(k);
  if (changedNs.size > 0)
    for (const [k, list] of npsByNamespace(
      nps.filter((p) => changedNs.has(`${p.np?.cluster}/${p.np?.namespace}`)),
    ))
      byNs.set(k, list);
  const classes = classBuilder(next, cps, nps, L, cache.classes.keys, byNs);
  const classDelta = new Map<string, number>();
  const bump = (k: string, d: number): void => {
    classDelta.set(k, (classDelta.get(k) ?? 0) + d);
  };
  const seen = new Map<string, SubjectClass>();
  const moved: { id: string; pod: Pod; egress: SubjectClass; ingress: SubjectClass }[] = [];
  for (const id of affected) {
    const r = index.pods.get(id);
    if (r === undefined || r.hostNetwork) continue;
    const egress = classes.classOf(r.pod, 'Egress');
    const ingress = classes.classOf(r.pod, 'Ingress');
    seen.set(egress.key, egress);
    seen.set(ingress.key, ingress);
    if (egress.key !== r.egressClass) {
      bump(r.egressClass, -1);
      bump(egress.key, 1);
    }
    if (ingress.key !== r.ingressClass) {
      bump(r.ingressClass, -1);
      bump(ingress.key, 1);
    }
    moved.push({ id, pod: r.pod, egress, ingress });
  }
  const oldNumbers = compiled.allocation.tables;
  const vanished: string[] = [];
  const added: string[] = [];
  for (const [k, d] of classDelta) {
    if (d === 0) continue;
    const n = (index.classCounts.get(k) ?? 0) + d;
    if (n < 0) return null;
    if (n === 0) vanished.push(k);
    else if (!oldNumbers.has(k)) added.push(k);
  }
  const tableNumbers = renumber(oldNumbers, vanished, added, 0);
  for (const k of added) if ((tableNumbers.get(k) as number) >= limits.tables) return null;

  // ---- tables: new classes and classes whose program names a changed policy
  const update = new TableUpdate(
    index.dep,
    x.memo,
    cidr?.byNumber ?? compiled.meta.identities,
    cache.setTexts,
    cache.keyCache,
  );
  const dirty = cidr === null ? new Set<number>() : update.identitiesChanged(cidr.gone, cidr.added);
  const vanishedSet = new Set(vanished);
  const removedTables = new Set(vanished.map((k) => oldNumbers.get(k) as number));
  const rebuiltNow = new Set<number>();
  for (const [k, cls] of seen) {
    if (vanishedSet.has(k)) continue;
    const t = tableNumbers.get(k) as number;
    if (!added.includes(k) && !dirty.has(t) && !classPolicies(k).some((id) => changedIds.has(id)))
      continue;
    rebuiltNow.add(t);
    if (update.rebuild(t, cls).entries.length > limits.tableEntries) return null;
  }
  // Tables reading a CIDR set that changed (their programs are as they were).
  for (const t of dirty) {
    if (rebuiltNow.has(t) || removedTables.has(t)) continue;
    const rec = index.dep.tables.get(t);
    if (rec === undefined || cidr === null) return null;
    if (update.patch(t, rec.cls, cidr.changedNums).entries.length > limits.tableEntries)
      return null;
  }
  const asm = assembleTables(
    compiled.encoded.tables,
    compiled.meta.tables,
    update.rebuilt,
    removedTables,
    { before: index.classCounts, delta: classDelta },
    oldNumbers,
    update.patchable,
  );

  // ---- endpoints of the affected pods
  const oldEps = compiled.encoded.endpoints;
  let endpoints: CompiledEndpoint[] | readonly CompiledEndpoint[] = oldEps;
  const upsertEp: CompiledEndpoint[] = [];
  for (const m of moved) {
    const i = podPosition(next.pods, m.pod);
    const old = oldEps[i];
    if (old === undefined || old.endpoint !== m.id) return null;
    const e: CompiledEndpoint = {
      ...old,
      egressTable: tableNumbers.get(m.egress.key) as number,
      ingressTable: tableNumbers.get(m.ingress.key) as number,
      flags: endpointFlags(m.egress, m.ingress),
    };
    if (sameEndpoint(old, e)) continue;
    if (endpoints === oldEps) endpoints = oldEps.slice();
    (endpoints as CompiledEndpoint[])[i] = e;
    upsertEp.push(e);
  }

  // ---- commit (the index now describes `next`)
  update.commit(removedTables);
  for (const [k, d] of classDelta) {
    if (d === 0) continue;
    const n = (index.classCounts.get(k) ?? 0) + d;
    if (n === 0) index.classCounts.delete(k);
    else index.classCounts.set(k, n);
  }
  for (const m of moved) {
    const r = index.pods.get(m.id);
    if (r !== undefined)
      index.pods.set(m.id, { ...r, egressClass: m.egress.key, ingressClass: m.ingress.key });
  }
  for (let i = 0; i < 5; i++) {
    const have = index.policyKeys.counts[i] as Map<string, number>;
    for (const [k, d] of keyDelta[i] as Map<string, number>)
      if (d !== 0) have.set(k, (have.get(k) ?? 0) + d);
  }
  if (cidr !== null) {
    for (const q of removedPrefixes) index.prefixes.delete(q.text);
    for (const q of addedPrefixes) index.prefixes.set(q.text, q);
    for (const [t, k] of cidr.prefixKeys) {
      if (k === null) index.prefixKeys.delete(t);
      else index.prefixKeys.set(t, k);
    }
    index.keyer.setPrefixes(cidr.set);
  }
  index.world = next;
  cache.live.current = next;

  const eps = endpoints as CompiledEndpoint[];
  const byNumber = cidr?.byNumber ?? compiled.meta.identities;
  const ipcache = cidr?.ipcache ?? compiled.encoded.ipcache;
  const out: Compiled = {
    encoded: { ipcache, endpoints: eps, tables: asm.tables, cookies: refs },
    meta: { ...compiled.meta, tables: asm.meta, identities: byNumber },
    allocation: {
      ...compiled.allocation,
      identities: cidr?.numbering ?? compiled.allocation.identities,
      tables: tableNumbers,
      cookies,
    },
    stats: {
      ...compiled.stats,
      identities: byNumber.size,
      ipcacheEntries: ipcache.length,
      tables: asm.tables.length,
      policyEntries: asm.policyEntries,
      maxTableEntries: asm.maxEntries,
      cookies: refs.size,
    },
  };
  const newCache: CompileCache = {
    ...cache,
    world: next,
    cookies,
    cps,
    nps,
    classes,
    byNumber,
    matchers: index.dep.matchers,
    named: index.dep.named,
    tables: index.dep.tables,
  };
  return {
    compiled: out,
    cache: newCache,
    index,
    delta: {
      ipcache: cidr?.delta ?? { upsert: [], remove: [] },
      endpoints: { upsert: upsertEp, remove: [] as EndpointId[] },
      tables: { replace: asm.replace, patch: asm.patch, remove: asm.remove },
    },
    podsRecomputed: moved.length,
    rebuiltTables: update.rebuilt.length,
    matchersEvaluated: update.pendingMatchers.size,
  };
}

interface CidrChanges {
  readonly set: PrefixSet;
  /** Prefix text → its new CIDR identity key (null: the prefix is gone). */
  readonly prefixKeys: Map<string, string | null>;
  readonly numbering: Numbering;
  readonly byNumber: ReadonlyMap<number, IdentityInfo>;
  readonly gone: number[];
  readonly added: IdentityInfo[];
  /** Numbers whose identity vanished, appeared or both. */
  readonly changedNums: ReadonlySet<number>;
  readonly ipcache: MapEntry[];
  readonly delta: { upsert: MapEntry[]; remove: Uint8Array[] };
}

const within = (p: Prefix, q: Prefix): boolean =>
  p.family === q.family && p.len >= q.len && (p.net & mask(q.len)) === q.net;

/**
 * Policy prefixes added or removed: the CIDR identities of the prefixes
 * inside them change key (a CIDR identity is keyed by the prefixes
 * containing it), and so may the CIDR identity of every address inside them
 * (its longest named prefix). Computed with allocate()'s and buildIpcache()'s
 * formulas; only the ipcache entries inside a changed prefix are looked at.
 * 'fallback' for what this does not do: /128 (or IPv4 /32) prefixes (an
 * address entry overrides them), prefixes covering the IPv4 block (the
 * ::ffff:0:0/96 entry) and 0.0.0.0/0.
 */
function cidrChanges(
  index: PodIndex,
  compiled: Compiled,
  addedPrefixes: readonly Prefix[],
  removedPrefixes: readonly Prefix[],
): CidrChanges | null | 'fallback' {
  const changed = [...addedPrefixes, ...removedPrefixes];
  if (changed.length === 0) return null;
  for (const q of changed)
    if (q.len === 128 || coversV4Space(q) || (q.family === 4 && q.len === 96)) return 'fallback';
  const prefixes = new Map(index.prefixes);
  for (const q of removedPrefixes) prefixes.delete(q.text);
  for (const q of addedPrefixes) prefixes.set(q.text, q);
  const set = new PrefixSet(prefixes.values());
  // Prefixes inside a changed one: their keys (the prefixes containing them) change.
  const prefixKeys = new Map<string, string | null>();
  for (const q of removedPrefixes) prefixKeys.set(q.text, null);
  for (const p of prefixes.values()) {
    if (!changed.some((q) => within(p, q))) continue;
    prefixKeys.set(p.text, `cidr|${sigText(set.containing(p.net, p.family, p.len))}`);
  }
  const oldKeys = new Set<string>();
  const newKeys = new Set<string>();
  for (const [t, k] of prefixKeys) {
    const o = index.prefixKeys.get(t);
    if (o !== undefined) oldKeys.add(o);
    if (k !== null) newKeys.add(k);
  }
  const vanished = [...oldKeys].filter((k) => !newKeys.has(k));
  const appeared = [...newKeys].filter((k) => !oldKeys.has(k));
  const prevNumbering = compiled.allocation.identities;
  if (appeared.some((k) => prevNumbering.has(k))) return 'fallback';
  const gone: number[] = [];
  for (const k of vanished) {
    const n = prevNumbering.get(k);
    if (n === undefined) return 'fallback';
    gone.push(n);
  }
  const numbering = renumber(
    prevNumbering,
    vanished,
    appeared,
    PAL.ID_FIRST_ALLOCATED,
    (n) => compiled.meta.identities.has(n), // freed numbers wait a compile (allocate.ts)
  );
  const added: IdentityInfo[] = appeared.map((key) => ({
    number: numbering.get(key) as number,
    key,
    kind: 'cidr',
    cluster: null,
    namespace: null,
    labels: {},
    nsLabels: {},
    clusterLabels: {},
    ports: [],
    node: null,
    cidrs: new Set(key.slice('cidr|'.length).split(',')),
  }));
  const byNumber = LayeredMap.update(
    compiled.meta.identities,
    added.map((i) => [i.number, i] as const),
    gone,
  );
  const num = (key: string | undefined | null): number =>
    key === undefined || key === null ? 0 : (numbering.get(key) ?? 0);
  const keyOfPrefix = (text: string): string | undefined => {
    const k = prefixKeys.get(text);
    return k === null ? undefined : (k ?? index.prefixKeys.get(text));
  };

  // ---- ipcache: addresses inside a changed prefix (their longest named prefix may differ)
  const old = compiled.encoded.ipcache;
  const updates = new Map<number, MapEntry>();
  for (const q of changed) {
    const lo = searchEntries(old, encodeIpcacheKey({ prefixlen: 128, addr: addressBytes(q.net) }));
    const hiKey = encodeIpcacheKey({
      prefixlen: 128,
      addr: addressBytes(q.net | (~mask(q.len) & ((1n << 128n) - 1n))),
    });
    for (let i = lo < 0 ? -lo - 1 : lo; i < old.length; i++) {
      const e = old[i] as MapEntry;
      if (compareBytes(e.key, hiKey) > 0) break;
      if (updates.has(i)) continue;
      const n = bytesToAddress(decodeIpcacheKey(e.key).addr);
      const c = set.containing(n, q.family);
      const longest = c[c.length - 1];
      const cidrIdentity = longest === undefined ? 0 : num(keyOfPrefix(longest.text));
      const v = decodeIpcacheValue(e.value);
      if (v.cidrIdentity === cidrIdentity) continue;
      updates.set(i, { key: e.key, value: encodeIpcacheValue({ ...v, cidrIdentity }) });
    }
  }
  const ipcache = old.slice();
  const upsert: MapEntry[] = [];
  for (const [i, e] of updates) {
    ipcache[i] = e;
    upsert.push(e);
  }
  // ---- the prefixes' own entries (identity WORLD, their CIDR identity)
  const remove: Uint8Array[] = [];
  for (const [t, k] of prefixKeys) {
    const p = (prefixes.get(t) ?? index.prefixes.get(t)) as Prefix;
    const key = encodeIpcacheKey({ prefixlen: p.len, addr: addressBytes(p.net) });
    const i = searchEntries(ipcache, key);
    if (k === null) {
      if (i < 0) return 'fallback';
      ipcache.splice(i, 1);
      remove.push(key);
      continue;
    }
    const value = encodeIpcacheValue({
      identity: PAL.ID_WORLD,
      nsIdentity: 0,
      cidrIdentity: num(k),
      nodeId: 0,
      flags: 0,
    });
    upsertSorted(ipcache, key, value, upsert);
  }
  return {
    set,
    prefixKeys,
    numbering,
    byNumber,
    gone,
    added,
    changedNums: new Set([...gone, ...added.map((i) => i.number)]),
    ipcache,
    delta: { upsert, remove },
  };
}
