/**
 * Recompiling after a change. `recompile(state, world)` compiles the new
 * world with the previous numbering (so unchanged identities, tables and
 * cookies keep their numbers) and reuses the entries of every table whose
 * inputs are unchanged (same fingerprint: program and the identities its
 * rules can match); only tables whose inputs changed are evaluated again.
 * The result is, by construction, the full compile of the new world given
 * the previous numbering, byte for byte; the delta lists only what differs.
 * On an error (bad input, capacity) nothing changes: the caller keeps the
 * previous state and its tables stay in force.
 */
import type {
  CompiledEndpoint,
  CompiledTable,
  EncodedDelta,
  TablePatch,
  EncodedTables,
  MapEntry,
} from '../compiled.js';
import { podId, type EndpointId } from '../model/endpoint.js';
import type { ClusterPolicy, NetworkPolicy } from '../model/policy.js';
import type { Namespace, Node, Pod, World } from '../model/world.js';
import { decodeIpcacheValue, hex } from '../encode/codec.js';
import { PAL } from '../encode/layout.js';
import { entryPatch, worthPatching } from './table-patch.js';
import {
  compile,
  type Allocation,
  type Compiled,
  type CompileCache,
  type CompileError,
  type CompileOptions,
  type CompileWork,
  TableMemo,
} from './compile.js';
import { sameBytes, sameEndpoint, sameEntries } from './deps.js';
import { buildPodIndex, recompilePods, type PodIndex } from './pod-changes.js';
import { policyKeyCounts, recompilePolicies } from './policy-changes.js';

export interface CompilerState {
  readonly world: World;
  readonly options: Omit<CompileOptions, 'previous'>;
  readonly compiled: Compiled;
  /** Table entries by fingerprint, for the next recompile. */
  readonly memo: TableMemo;
  /** Compiled policies, classes and matcher sets, reused where their inputs are unchanged. */
  readonly cache?: CompileCache;
  /** Per-pod state of the pod-only path (built on its first use). */
  readonly podIndex?: PodIndex;
}

export type StateResult =
  | { readonly ok: true; readonly state: CompilerState }
  | { readonly ok: false; readonly error: CompileError };
export type RecompileResult =
  | {
      readonly ok: true;
      readonly state: CompilerState;
      readonly delta: EncodedDelta;
      readonly reusedTables: number;
      readonly rebuiltTables: number;
      /** Matcher sets evaluated from scratch / updated for changed identities / reused as they were. */
      readonly work: CompileWork;
    }
  | { readonly ok: false; readonly error: CompileError };

/** `previous`: a numbering to keep (e.g. one saved by a process that ran before this one). */
export function initialState(
  world: World,
  options: Omit<CompileOptions, 'previous'> = {},
  previous?: Allocation,
): StateResult {
  const memo = new TableMemo();
  let cache: CompileCache | undefined;
  const r = compile(world, previous ? { ...options, previous } : options, {
    read: undefined,
    write: memo,
    keep: (c) => (cache = c),
  });
  return r.ok ? { ok: true, state: { world, options, compiled: r.compiled, memo, cache } } : r;
}

export function recompile(prev: CompilerState, world: World): RecompileResult {
  const fast =
    prev.cache === undefined
      ? null
      : recompilePods(prev.world, world, {
          compiled: prev.compiled,
          cache: prev.cache,
          index: prev.podIndex,
          memo: prev.memo,
          ...(prev.options.limits !== undefined ? { limits: prev.options.limits } : {}),
          localCluster: prev.options.localCluster ?? null,
        });
  if (fast !== null) {
    return {
      ok: true,
      state: {
        world,
        options: prev.options,
        compiled: fast.compiled,
        memo: prev.memo,
        cache: fast.cache,
        podIndex: fast.index,
      },
      delta: fast.delta,
      reusedTables: fast.compiled.encoded.tables.length - fast.rebuiltTables,
      rebuiltTables: fast.rebuiltTables,
      work: {
        matchersEvaluated: 0,
        matchersUpdated: fast.matchersUpdated,
        matchersReused: 0,
        policiesReused: true,
        path: 'pods',
        podsRecomputed: fast.podsRecomputed,
      },
    };
  }
  const pol =
    prev.cache === undefined
      ? null
      : recompilePolicies(prev.world, world, {
          compiled: prev.compiled,
          cache: prev.cache,
          index: prev.podIndex,
          memo: prev.memo,
          ...(prev.options.limits !== undefined ? { limits: prev.options.limits } : {}),
        });
  if (pol !== null) {
    return {
      ok: true,
      state: {
        world,
        options: prev.options,
        compiled: pol.compiled,
        memo: prev.memo,
        cache: pol.cache,
        podIndex: pol.index,
      },
      delta: pol.delta,
      reusedTables: pol.compiled.encoded.tables.length - pol.rebuiltTables,
      rebuiltTables: pol.rebuiltTables,
      work: {
        matchersEvaluated: pol.matchersEvaluated,
        matchersUpdated: 0,
        matchersReused: 0,
        policiesReused: false,
        path: 'policies',
        podsRecomputed: pol.podsRecomputed,
      },
    };
  }
  const memo = new TableMemo();
  let cache: CompileCache | undefined;
  const work: CompileWork = {
    matchersEvaluated: 0,
    matchersUpdated: 0,
    matchersReused: 0,
    policiesReused: false,
    path: 'general',
    podsRecomputed: 0,
  };
  const r = compile(
    world,
    { ...prev.options, previous: prev.compiled.allocation },
    { read: prev.memo, write: memo, cache: prev.cache, keep: (c) => (cache = c), work },
  );
  if (!r.ok) return r;
  let reused = 0;
  for (const fp of memo.keys()) if (prev.memo.has(fp)) reused++;
  // The fast paths' index, built now (O(world), like this compile) so that the
  // next small change does not pay for it.
  const podIndex = cache === undefined ? undefined : buildPodIndex(world, r.compiled, cache);
  if (podIndex !== undefined) podIndex.policyKeys = policyKeyCounts(world);
  return {
    ok: true,
    state: { world, options: prev.options, compiled: r.compiled, memo, cache, podIndex },
    delta: diffTables(prev.compiled.encoded, r.compiled.encoded),
    reusedTables: reused,
    rebuiltTables: memo.size - reused,
    work,
  };
}

/** One change of the world, as informers report them. */
export type WorldChange =
  | { readonly kind: 'upsertPod'; readonly pod: Pod }
  | {
      readonly kind: 'removePod';
      readonly cluster: string;
      readonly namespace: string;
      readonly name: string;
    }
  | { readonly kind: 'upsertNamespace'; readonly namespace: Namespace }
  | { readonly kind: 'upsertNode'; readonly node: Node }
  | { readonly kind: 'upsertNetworkPolicy'; readonly policy: NetworkPolicy }
  | {
      readonly kind: 'removeNetworkPolicy';
      readonly cluster: string;
      readonly namespace: string;
      readonly name: string;
    }
  | { readonly kind: 'upsertClusterPolicy'; readonly policy: ClusterPolicy }
  | {
      readonly kind: 'removeClusterPolicy';
      readonly policyKind: ClusterPolicy['kind'];
      readonly cluster: string | null;
      readonly name: string;
    };

export function compileIncremental(prev: CompilerState, change: WorldChange): RecompileResult {
  return recompile(prev, applyChange(prev.world, change));
}

const nsKey = (x: { cluster: string; namespace: string; name: string }): string =>
  `${x.cluster}\u0000${x.namespace}\u0000${x.name}`;

function upsert<T>(list: readonly T[], item: T, key: (t: T) => string): T[] {
  const k = key(item);
  const out = list.filter((x) => key(x) !== k);
  out.push(item);
  return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The world after one change (arrays stay sorted as World requires). */
export function applyChange(w: World, c: WorldChange): World {
  switch (c.kind) {
    case 'upsertPod':
      return { ...w, pods: upsert(w.pods, c.pod, nsKey) };
    case 'removePod': {
      const id = podId(c);
      return { ...w, pods: w.pods.filter((p) => podId(p) !== id) };
    }
    case 'upsertNamespace':
      return {
        ...w,
        namespaces: upsert(w.namespaces, c.namespace, (n) => `${n.cluster}\u0000${n.name}`),
      };
    case 'upsertNode':
      return { ...w, nodes: upsert(w.nodes, c.node, (n) => `${n.cluster}\u0000${n.name}`) };
    case 'upsertNetworkPolicy':
      return { ...w, networkPolicies: upsert(w.networkPolicies, c.policy, nsKey) };
    case 'removeNetworkPolicy': {
      const k = nsKey(c);
      return { ...w, networkPolicies: w.networkPolicies.filter((p) => nsKey(p) !== k) };
    }
    case 'upsertClusterPolicy': {
      const key = (p: ClusterPolicy): string => `${p.cluster ?? ''}\u0000${p.name}\u0000${p.kind}`;
      return { ...w, clusterPolicies: upsert(w.clusterPolicies, c.policy, key) };
    }
    case 'removeClusterPolicy':
      return {
        ...w,
        clusterPolicies: w.clusterPolicies.filter(
          (p) => !(p.kind === c.policyKind && p.cluster === c.cluster && p.name === c.name),
        ),
      };
  }
}

/** The minimal change that turns `a` into `b`. */
export function diffTables(a: EncodedTables, b: EncodedTables): EncodedDelta {
  const oldIpc = new Map(a.ipcache.map((e) => [hex(e.key), e]));
  const upsertIpc: MapEntry[] = [];
  const seen = new Set<string>();
  for (const e of b.ipcache) {
    const k = hex(e.key);
    seen.add(k);
    const o = oldIpc.get(k);
    if (o === undefined || !sameBytes(o.value, e.value)) upsertIpc.push(e);
  }
  const removeIpc = a.ipcache.filter((e) => !seen.has(hex(e.key))).map((e) => e.key);

  const oldEp = new Map(a.endpoints.map((e) => [e.endpoint, e]));
  const newEp = new Set<EndpointId>();
  const upsertEp: CompiledEndpoint[] = [];
  for (const e of b.endpoints) {
    newEp.add(e.endpoint);
    const o = oldEp.get(e.endpoint);
    if (o === undefined || !sameEndpoint(o, e)) upsertEp.push(e);
  }
  const removeEp = a.endpoints.filter((e) => !newEp.has(e.endpoint)).map((e) => e.endpoint);

  const oldT = new Map(a.tables.map((t) => [t.table, t]));
  const newT = new Set<number>();
  const replace: CompiledTable[] = [];
  const patch: TablePatch[] = [];
  // Identities some address or endpoint refers to, before and after: only
  // the others may gain or lose keys in place (table-patch.ts).
  const before = referencedIdentities(a);
  const after = referencedIdentities(b);
  const canInsert = (n: number): boolean => !before.has(n);
  const canRemove = (n: number): boolean => !after.has(n);
  for (const t of b.tables) {
    newT.add(t.table);
    const o = oldT.get(t.table);
    if (o === undefined) replace.push(t);
    else if (!sameEntries(o.entries, t.entries)) {
      const d = entryPatch(o.entries, t.entries, canInsert, canRemove);
      if (d !== null && worthPatching(d, t.entries.length))
        patch.push({ table: t, insert: d.insert, remove: d.remove });
      else replace.push(t);
    }
  }
  const removeT = a.tables.filter((t) => !newT.has(t.table)).map((t) => t.table);
  return {
    ipcache: { upsert: upsertIpc, remove: removeIpc },
    endpoints: { upsert: upsertEp, remove: removeEp },
    tables: { replace, patch, remove: removeT },
  };
}

/** The identities the ipcache and endpoint entries of `t` name (what packets are looked up with). */
function referencedIdentities(t: EncodedTables): Set<number> {
  const out = new Set<number>([PAL.ID_ANY, PAL.ID_WORLD]);
  for (const e of t.ipcache) {
    const v = decodeIpcacheValue(e.value);
    out.add(v.identity).add(v.nsIdentity).add(v.cidrIdentity);
  }
  for (const e of t.endpoints) out.add(e.identity);
  return out;
}
