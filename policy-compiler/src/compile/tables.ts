/**
 * One policy table (subject class × direction) as LPM entries with per-tier
 * values (docs/compiler.md, "Tables").
 *
 * Every rule peer is represented under one kind of key: pod identities,
 * namespace identities, CIDR identities, node identities or ANY (a
 * NetworkPolicy rule without from/to); egress rules with named ports also
 * under the pod identities they match (the port resolves on the destination
 * pod). A key's value at (protocol, port) is, per tier and for the enforced
 * and the staged (Audit enforced) program, the first rule represented under
 * the key that matches there (rank = position in the table's program, 1 =
 * first). The datapath looks up the peer's identity, namespace identity, CIDR
 * identity and ANY, takes per tier the lowest non-zero rank and resolves the
 * tiers; since every rule is the OR of its peers and each peer's match is
 * exactly a function of its key, that is the first matching rule of the tier.
 * No entry = no rule matched (all ranks 0).
 */
import type { Direction } from '../model/policy.js';
import type { ContainerPort, Protocol } from '../model/world.js';
import {
  compareBytes,
  encodePolicyKey,
  encodePolicyValue,
  NO_MATCH,
  type TierMatch,
} from '../encode/codec.js';
import { IPPROTO, PAL } from '../encode/layout.js';
import type { MapEntry } from '../compiled.js';
import { portRangeCover, portRangeCoverSize } from './port-ranges.js';
import type { IdentityInfo } from './identities.js';
import type { CRule, PeerMatcher, Program } from './program.js';
import type { TableInputs } from './table-memo.js';
import { textHash } from './table-memo.js';
import { firstIndex, identityRanges, NO_DIFF, sameEntries, type EntryDiff } from './table-patch.js';

const PROTOS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/** One encoded value and its text (equality). */
interface Val {
  readonly bytes: Uint8Array;
  readonly text: string;
}

/** Whether a rule's ports include (proto, port); 'other' = a protocol without ports (ICMP...). */
function portMatches(
  rule: CRule,
  proto: Protocol | 'other',
  port: number,
  dst: readonly ContainerPort[],
): boolean {
  if (rule.ports === 'all') return true;
  if (proto === 'other') return false;
  for (const pm of rule.ports) {
    switch (pm.kind) {
      case 'all':
        if (pm.protocol === proto) return true;
        break;
      case 'range':
        if (pm.protocol === proto && port >= pm.start && port <= pm.end) return true;
        break;
      case 'named':
        for (const cp of dst) {
          if (
            cp.name === pm.name &&
            cp.protocol === proto &&
            cp.containerPort === port &&
            (pm.protocol === 'any' || pm.protocol === cp.protocol)
          ) {
            return true;
          }
        }
        break;
    }
  }
  return false;
}

const ACTION: Record<CRule['action'], number> = {
  Accept: PAL.ACTION_ACCEPT,
  Deny: PAL.ACTION_DENY,
  Pass: PAL.ACTION_PASS,
  Allow: PAL.ACTION_ALLOW,
};

/** Per rule of the table's program (allRules order): its tier and whether the enforced program has it. */
interface RuleInfo {
  readonly rule: CRule;
  readonly tier: number;
  readonly enforced: boolean;
  readonly match: TierMatch;
}

function ruleInfos(p: Program): RuleInfo[] {
  const enforced = new Set<CRule>([...p.admin, ...p.np, ...p.baseline]);
  const out: RuleInfo[] = [];
  const add = (rs: readonly CRule[], tier: number): void => {
    for (const r of rs) {
      out.push({
        rule: r,
        tier,
        enforced: enforced.has(r),
        match: { rank: out.length + 1, cookie: r.cookie, action: ACTION[r.action], flags: r.flags },
      });
    }
  };
  add(p.adminStaged, PAL.TIER_ADMIN);
  add(p.np, PAL.TIER_NETWORK_POLICY);
  add(p.baselineStaged, PAL.TIER_BASELINE);
  return out;
}

const ZERO_TEXT = '';

const ZERO: Val = {
  bytes: encodePolicyValue({
    enforced: [NO_MATCH, NO_MATCH, NO_MATCH],
    staged: [NO_MATCH, NO_MATCH, NO_MATCH],
  }),
  text: ZERO_TEXT,
};

/** The per-tier first matches among `rules` (indices into infos, ascending) at one point. */
function evaluate(
  infos: readonly RuleInfo[],
  rules: readonly number[],
  proto: Protocol | 'other',
  port: number,
  dst: readonly ContainerPort[],
): Val {
  const enforced: (RuleInfo | null)[] = [null, null, null];
  const staged: (RuleInfo | null)[] = [null, null, null];
  for (const i of rules) {
    const info = infos[i] as RuleInfo;
    const t = info.tier;
    if (staged[t] !== null && (enforced[t] !== null || !info.enforced)) continue;
    if (!portMatches(info.rule, proto, port, dst)) continue;
    staged[t] ??= info;
    if (info.enforced) enforced[t] ??= info;
  }
  if (staged.every((x) => x === null)) return ZERO;
  const tm = (x: RuleInfo | null): TierMatch => (x === null ? NO_MATCH : x.match);
  const e = enforced.map(tm) as [TierMatch, TierMatch, TierMatch];
  const s = staged.map(tm) as [TierMatch, TierMatch, TierMatch];
  const text = [...enforced, ...staged].map((x) => (x === null ? 0 : x.match.rank)).join(',');
  return { bytes: encodePolicyValue({ enforced: e, staged: s }), text };
}

interface Run {
  start: number;
  end: number;
  val: Val;
}

/** Port boundaries where any of these rules' match can change, for one protocol. */
function boundaries(
  infos: readonly RuleInfo[],
  rules: readonly number[],
  proto: Protocol,
  dst: readonly ContainerPort[],
): number[] {
  const b = new Set<number>([0]);
  let named = false;
  for (const i of rules) {
    const r = (infos[i] as RuleInfo).rule;
    if (r.ports === 'all') continue;
    for (const pm of r.ports) {
      if (pm.kind === 'range' && pm.protocol === proto) {
        b.add(pm.start);
        if (pm.end < 65535) b.add(pm.end + 1);
      } else if (pm.kind === 'named') named = true;
    }
  }
  if (named) {
    for (const cp of dst) {
      if (cp.protocol !== proto || cp.name === null) continue;
      b.add(cp.containerPort);
      if (cp.containerPort < 65535) b.add(cp.containerPort + 1);
    }
  }
  return [...b].sort((x, y) => x - y);
}

interface Emit {
  push(prefixlen: number, protocol: number, port: number, v: Val): void;
}

/**
 * Emits one key's entries: its value for protocols without ports ("other",
 * the /32 entry when not zero) and per protocol the cheapest of: no
 * protocol-wide entry (fall back to /32 or to no entry), or a /40 background
 * with the value covering most port blocks; other port runs get exact
 * minimal prefix covers.
 */
function emitKey(other: Val, runsByProto: ReadonlyMap<Protocol, Run[]>, out: Emit): void {
  const wide = other.text !== ZERO_TEXT;
  if (wide) out.push(32, 0, 0, other);
  const fallback = wide ? other.text : ZERO_TEXT;
  for (const proto of PROTOS) {
    const runs = runsByProto.get(proto) as Run[];
    const covers = runs.map((r) => portRangeCoverSize(r.start, r.end));
    const total = covers.reduce((a, b) => a + b, 0);
    // Option A: no proto-wide entry.
    let bestCost = 0;
    runs.forEach((r, i) => {
      if (r.val.text !== fallback) bestCost += covers[i] as number;
    });
    let bg: Val | null = null;
    // Option B: a proto-wide /40 entry with the value covering most blocks.
    const byVal = new Map<string, { val: Val; blocks: number }>();
    runs.forEach((r, i) => {
      const e = byVal.get(r.val.text) ?? { val: r.val, blocks: 0 };
      e.blocks += covers[i] as number;
      byVal.set(r.val.text, e);
    });
    for (const e of byVal.values()) {
      const cost = 1 + total - e.blocks;
      if (cost < bestCost) {
        bestCost = cost;
        bg = e.val;
      }
    }
    const pnum = IPPROTO[proto];
    if (bg !== null) out.push(40, pnum, 0, bg);
    const base = bg !== null ? bg.text : fallback;
    for (const r of runs) {
      if (r.val.text === base) continue;
      for (const b of portRangeCover(r.start, r.end)) out.push(40 + b.bits, pnum, b.port, r.val);
    }
  }
}

export interface Template {
  readonly prefixlen: number;
  readonly protocol: number;
  readonly port: number;
  readonly value: Uint8Array;
}

/** Encoded policy keys by identity, then (prefixlen, protocol, port). */
export type KeyCache = Map<number, Map<number, Uint8Array>>;

function policyKey(
  cache: KeyCache | undefined,
  prefixlen: number,
  identity: number,
  protocol: number,
  port: number,
): Uint8Array {
  if (cache === undefined) return encodePolicyKey({ prefixlen, identity, protocol, port });
  let byId = cache.get(identity);
  if (byId === undefined) cache.set(identity, (byId = new Map()));
  const k = (prefixlen * 256 + protocol) * 65536 + port;
  let key = byId.get(k);
  if (key === undefined)
    byId.set(k, (key = encodePolicyKey({ prefixlen, identity, protocol, port })));
  return key;
}

/** Templates of one program by (rule list, destination ports): hash → candidates. */
export type TemplateBucket = Map<
  number,
  { readonly rules: readonly number[]; readonly dst: string; readonly ts: readonly Template[] }[]
>;

/** Entries per (program text, key signature), shared across the tables of one compile. */
export type TemplateCache = Map<string, TemplateBucket>;

const NO_PORTS: readonly ContainerPort[] = [];

// Text of a destination port list (identities' port arrays are immutable and shared).
const dstTexts = new WeakMap<readonly ContainerPort[], string>();
function dstText(dst: readonly ContainerPort[]): string {
  let t = dstTexts.get(dst);
  if (t === undefined) dstTexts.set(dst, (t = JSON.stringify(dst)));
  return t;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface TableInput {
  readonly program: Program;
  readonly byNumber: ReadonlyMap<number, IdentityInfo>;
  /** Entries per (program, key signature), shared across the tables of one compile. */
  readonly templateCache?: TemplateCache;
  /** Identities (of the matcher's kind) each peer matcher selects, for the program's cluster. */
  readonly matched: (m: PeerMatcher) => ReadonlySet<number>;
  /**
   * Egress rules with named ports: the pod identities the rule matches that
   * have a container port of one of its names (memoized by the caller).
   */
  readonly namedTargets: (r: CRule) => ReadonlySet<number>;
  /** Texts of matched identity sets, shared by the tables of one compile (fingerprints). */
  readonly setTextCache?: SetTextCache;
  /** Encoded keys shared by the tables of one compile (keys are never mutated). */
  readonly keyCache?: KeyCache;
}

export interface CompiledTableEntries {
  readonly entries: MapEntry[];
}

export interface PatchedEntries {
  readonly entries: readonly MapEntry[];
  /** The change key by key; null when an identity's entries changed in place (table-patch.ts). */
  readonly diff: EntryDiff | null;
}

export interface TablePlan extends TableInputs {
  // Inputs: everything the entries depend on, as texts: the program (rules in
  // order with cookie, action, flags, ports; tiers; audit), and the identity
  // sets each rule's peers select (with named ports for egress). Equal inputs
  // give byte-identical entries.
  build(): CompiledTableEntries;
  /** The entries when only `changed` identities' membership differs from `old`'s inputs (patchTable). */
  patch(old: readonly MapEntry[], changed: ReadonlySet<number>): PatchedEntries;
}

const ruleText = (r: CRule): string =>
  `${r.cookie}:${r.action}:${r.flags}:${r.peers === null ? '*' : 'p'}:${JSON.stringify(r.ports)}`;

/** All entries of one table, sorted by key bytes. */
export function compileTable(t: TableInput): CompiledTableEntries {
  return planTable(t).build();
}

/** A text and its hash (table-memo.ts). */
interface Hashed {
  readonly text: string;
  readonly hash: string;
}

/** Per-compile cache of the text of each matched identity set (fingerprints). */
export type SetTextCache = WeakMap<ReadonlySet<number>, { ingress?: Hashed; egress?: Hashed }>;

/** The identities of a matched set, with their named ports for egress (what a table's entries can depend on). */
function setText(t: TableInput, set: ReadonlySet<number>, egress: boolean): Hashed {
  let c = t.setTextCache?.get(set);
  if (c === undefined) {
    c = {};
    t.setTextCache?.set(set, c);
  }
  const have = egress ? c.egress : c.ingress;
  if (have !== undefined) return have;
  const nums = [...set].sort((x, y) => x - y);
  const text = egress
    ? nums.map((n) => `${n}${JSON.stringify((t.byNumber.get(n) as IdentityInfo).ports)}`).join(' ')
    : nums.join(' ');
  const h = { text, hash: textHash(text) };
  if (egress) c.egress = h;
  else c.ingress = h;
  return h;
}

// A program's text is a function of the (immutable) program object.
const programTexts = new WeakMap<Program, Hashed & { readonly infos: readonly RuleInfo[] }>();
function programText(p: Program): Hashed & { readonly infos: readonly RuleInfo[] } {
  let c = programTexts.get(p);
  if (c === undefined) {
    const infos = ruleInfos(p);
    const text = [
      p.direction,
      infos.map((i) => `${i.tier}${i.enforced ? 'e' : 's'}${ruleText(i.rule)}`).join(';'),
      p.hasAudit ? 1 : 0,
      p.isolatedBy.length > 0 ? 1 : 0,
      JSON.stringify(p.dstPorts),
    ].join('\n');
    programTexts.set(p, (c = { text, hash: textHash(text), infos }));
  }
  return c;
}

/**
 * The table's inputs: the program, then per rule the identity sets its peers
 * select (and, for egress rules with named ports, the pod identities they
 * are represented under). The fingerprint is their hashes; the texts are kept
 * for the memo's exact comparison (table-memo.ts).
 */
export function planTable(t: TableInput): TablePlan {
  const p = t.program;
  const prog = programText(p);
  const infos = prog.infos;
  const egress = p.direction === 'Egress';
  const inputs: string[] = [prog.text];
  let fingerprint = prog.hash;
  // The identity sets each rule is represented under (read once per table).
  const ruleSets: ReadonlySet<number>[][] = [];
  for (const info of infos) {
    const r = info.rule;
    const sets: ReadonlySet<number>[] = [];
    fingerprint += ';';
    if (r.peers !== null)
      for (const m of r.peers) {
        const set = t.matched(m);
        const h = setText(t, set, egress);
        sets.push(set);
        inputs.push(h.text);
        fingerprint += `/${h.hash}`;
      }
    if (egress && r.usesNamedPorts) {
      const set = t.namedTargets(r);
      const h = setText(t, set, true);
      sets.push(set);
      inputs.push(h.text);
      fingerprint += `/n${h.hash}`;
    }
    ruleSets.push(sets);
  }
  return {
    fingerprint,
    inputs,
    build: () => buildTable(t, prog.text, infos, ruleSets),
    patch: (old, changed) => patchTable(t, prog.text, infos, ruleSets, old, changed),
  };
}

/** The entries (templates) of one key with these rules and destination ports, via the cache. */
function templatesFor(
  infos: readonly RuleInfo[],
  cache: TemplateBucket,
  rules: readonly number[],
  h: number,
  dst: readonly ContainerPort[],
  dKey: string,
): readonly Template[] {
  let bucket = cache.get(h);
  if (bucket === undefined) cache.set(h, (bucket = []));
  const hit = bucket.find((b) => b.dst === dKey && sameList(b.rules, rules));
  if (hit !== undefined) return hit.ts;
  const runsByProto = new Map<Protocol, Run[]>();
  for (const proto of PROTOS) {
    const bs = boundaries(infos, rules, proto, dst);
    const runs: Run[] = [];
    bs.forEach((start, i) => {
      const end = i + 1 < bs.length ? (bs[i + 1] as number) - 1 : 65535;
      const val = evaluate(infos, rules, proto, start, dst);
      const last = runs[runs.length - 1];
      if (last !== undefined && last.val.text === val.text) last.end = end;
      else runs.push({ start, end, val });
    });
    runsByProto.set(proto, runs);
  }
  const list: Template[] = [];
  emitKey(evaluate(infos, rules, 'other', 0, dst), runsByProto, {
    push(prefixlen, protocol, port, v) {
      list.push({ prefixlen, protocol, port, value: v.bytes });
    },
  });
  // In key order for one identity (patchTable relies on it).
  list.sort((a, b) => a.prefixlen - b.prefixlen || a.protocol - b.protocol || a.port - b.port);
  bucket.push({ rules, dst: dKey, ts: list });
  return list;
}

function bucketOf(t: TableInput, programText: string): TemplateBucket {
  let cache = t.templateCache?.get(programText);
  if (cache === undefined) {
    cache = new Map();
    t.templateCache?.set(programText, cache);
  }
  return cache;
}

/**
 * The table's entries when only the identities in `changed` joined or left
 * its sets: `old` without their entries, plus
 * their entries computed as buildTable() computes any key's. Exact because
 * a key's entries depend only on the rules represented under it and its
 * destination ports; key byte order is the numeric (prefixlen, identity,
 * protocol, port) order buildTable() sorts by (prefixlen < 256). The old
 * entries of a changed identity are found by binary search, so the work
 * beyond copying the array grows with the changed identities, not the table.
 * `diff` is the change key by key, or null when some identity has entries
 * both before and after that differ (not a patch: see table-patch.ts).
 */
function patchTable(
  t: TableInput,
  programText: string,
  infos: readonly RuleInfo[],
  ruleSets: readonly (readonly ReadonlySet<number>[])[],
  old: readonly MapEntry[],
  changed: ReadonlySet<number>,
): PatchedEntries {
  const p = t.program;
  const egress = p.direction === 'Egress';
  const cache = bucketOf(t, programText);
  const fresh: MapEntry[] = [];
  const dropped: [number, number][] = [];
  const insert: MapEntry[] = [];
  const remove: Uint8Array[] = [];
  let inPlace = true;
  for (const n of changed) {
    if (n === PAL.ID_ANY) continue;
    const rules: number[] = [];
    let h = 17;
    infos.forEach((info, i) => {
      const r = info.rule;
      if (info.tier === PAL.TIER_BASELINE && r.action === 'Pass') return;
      if (!(ruleSets[i] as readonly ReadonlySet<number>[]).some((set) => set.has(n))) return;
      rules.push(i);
      h = (Math.imul(h, 31) + i + 1) | 0;
    });
    const mine: MapEntry[] = [];
    if (rules.length > 0) {
      const id = t.byNumber.get(n);
      const dst = egress ? (id?.kind === 'pod' ? id.ports : NO_PORTS) : p.dstPorts;
      for (const x of templatesFor(infos, cache, rules, h, dst, egress ? dstText(dst) : ''))
        mine.push({
          key: policyKey(t.keyCache, x.prefixlen, n, x.protocol, x.port),
          value: x.value,
        });
    }
    const ranges = identityRanges(old, n);
    const before: MapEntry[] = [];
    for (const [lo, hi] of ranges) for (let i = lo; i < hi; i++) before.push(old[i] as MapEntry);
    // `mine` is in key order already: one identity, templates sorted (templatesFor).
    if (sameEntries(before, mine)) continue; // this identity's entries are as they were
    dropped.push(...ranges);
    fresh.push(...mine);
    if (before.length === 0) insert.push(...mine);
    else if (mine.length === 0) for (const e of before) remove.push(e.key);
    else inPlace = false;
  }
  if (dropped.length === 0 && fresh.length === 0) return { entries: old, diff: NO_DIFF };
  fresh.sort((a, b) => compareBytes(a.key, b.key));
  dropped.sort((a, b) => a[0] - b[0]);
  // Each fresh entry goes where its key sorts in `old` (binary search); the
  // old entries in between are copied without comparing, skipping the dropped ranges.
  let droppedCount = 0;
  for (const [lo, hi] of dropped) droppedCount += hi - lo;
  // Sized once: tables are copied on every patch, growth by push would double that.
  const entries = new Array<MapEntry>(old.length - droppedCount + fresh.length);
  let o = 0;
  let d = 0;
  const copyKept = (from: number, to: number): void => {
    let i = from;
    while (i < to) {
      while (d < dropped.length && (dropped[d] as [number, number])[1] <= i) d++;
      const r = dropped[d];
      const stop = r === undefined ? to : Math.min(to, r[0]);
      for (; i < stop; i++) entries[o++] = old[i] as MapEntry;
      if (r !== undefined && i >= r[0]) i = Math.max(i, r[1]);
    }
  };
  let at = 0;
  for (const e of fresh) {
    const q = Math.max(
      at,
      firstIndex(old, at, old.length, (k) => compareBytes(k, e.key) < 0),
    );
    copyKept(at, q);
    entries[o++] = e;
    at = q;
  }
  copyKept(at, old.length);
  insert.sort((a, b) => compareBytes(a.key, b.key));
  remove.sort(compareBytes);
  return { entries, diff: inPlace ? { insert, remove } : null };
}

function buildTable(
  t: TableInput,
  programText: string,
  infos: readonly RuleInfo[],
  ruleSets: readonly (readonly ReadonlySet<number>[])[],
): CompiledTableEntries {
  const p = t.program;
  const egress = p.direction === 'Egress';
  // Rules (ascending indices) represented under each key; ANY = PAL_ID_ANY.
  // A running hash of each list keys the template cache (no string per key).
  const byKey = new Map<number, number[]>();
  const hashes = new Map<number, number>();
  const add = (n: number, i: number): void => {
    let list = byKey.get(n);
    if (list === undefined) byKey.set(n, (list = []));
    if (list[list.length - 1] !== i) {
      list.push(i);
      hashes.set(n, (Math.imul(hashes.get(n) ?? 17, 31) + i + 1) | 0);
    }
  };
  infos.forEach((info, i) => {
    const r = info.rule;
    // Pass in the Baseline tier is ignored (as the reference).
    if (info.tier === PAL.TIER_BASELINE && r.action === 'Pass') return;
    if (r.peers === null) add(PAL.ID_ANY, i);
    for (const set of ruleSets[i] as readonly ReadonlySet<number>[]) for (const n of set) add(n, i);
  });

  const cache = bucketOf(t, programText);
  const rows: { identity: number; ts: readonly Template[] }[] = [];
  const keys = [...byKey.keys()].sort((a, b) => a - b);
  for (const n of keys) {
    const rules = byKey.get(n) as number[];
    const id = n === PAL.ID_ANY ? undefined : t.byNumber.get(n);
    // Where named ports resolve: the subject (ingress) or the destination pod (egress).
    const dst = egress ? (id?.kind === 'pod' ? id.ports : NO_PORTS) : p.dstPorts;
    const dKey = egress ? dstText(dst) : '';
    const h = hashes.get(n) as number;
    const ts = templatesFor(infos, cache, rules, h, dst, dKey);
    rows.push({ identity: n, ts });
  }
  // Key bytes order = (prefixlen, identity, protocol, port) numerically.
  const flat: {
    prefixlen: number;
    identity: number;
    protocol: number;
    port: number;
    value: Uint8Array;
  }[] = [];
  for (const r of rows)
    for (const x of r.ts)
      flat.push({
        prefixlen: x.prefixlen,
        identity: r.identity,
        protocol: x.protocol,
        port: x.port,
        value: x.value,
      });
  flat.sort(
    (a, b) =>
      a.prefixlen - b.prefixlen ||
      a.identity - b.identity ||
      a.protocol - b.protocol ||
      a.port - b.port,
  );
  const entries: MapEntry[] = flat.map((r) => ({
    key: policyKey(t.keyCache, r.prefixlen, r.identity, r.protocol, r.port),
    value: r.value,
  }));
  return { entries };
}

export type { Direction };
