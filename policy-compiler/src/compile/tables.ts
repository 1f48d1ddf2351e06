/**
 * One policy table (subject class × direction) as LPM entries.
 *
 * The datapath looks up (peer identity, proto, port) and (ANY, proto, port)
 * and keeps the entry with the higher precedence (identity on a tie); no
 * entry = deny, cookie 0. The compiler evaluates the whole program (Admin
 * with Pass, NetworkPolicy union and isolation, Baseline, default) for:
 * - ANY: a peer that only rules without peer restriction match;
 * - every identity that some peer-restricted rule (or the own-node
 *   exemption, or a named port on the peer) can match;
 * and emits, per identity, entries only where its answer differs from the
 * ANY answer. Precedence = 2 × rank of the first rule that matched (Pass
 * included; earlier rule = higher rank) + 1 for identity entries. Rules the
 * ANY peer matches also match every identity, so an identity's first match
 * is never later than ANY's: wherever both have an entry and the answers
 * differ, the identity entry has the higher precedence (docs/compiler.md).
 */
import type { Direction } from '../model/policy.js';
import type { ContainerPort, Protocol } from '../model/world.js';
import { encodePolicyKey, encodePolicyValue } from '../encode/codec.js';
import { IPPROTO, PAL } from '../encode/layout.js';
import type { MapEntry } from '../compiled.js';
import { portRangeCover, portRangeCoverSize } from './port-ranges.js';
import type { IdentityInfo } from './identities.js';
import type { CRule, PeerMatcher, Program } from './program.js';

const PROTOS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

interface Val {
  readonly verdict: number;
  readonly cookie: number;
  readonly flags: number;
  readonly staged: number;
  readonly stagedCookie: number;
  readonly rank: number;
  /** Everything but the rank: what the datapath answers. */
  readonly answer: string;
  /** answer + rank. */
  readonly full: string;
}

const NO_ENTRY_ANSWER = `${PAL.VERDICT_DENY},0,0,${PAL.STAGED_NONE},0`;

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

interface Outcome {
  verdict: number;
  cookie: number;
  flags: number;
}

const ALLOW_DEFAULT: Outcome = { verdict: PAL.VERDICT_ALLOW, cookie: 0, flags: 0 };
const DENY_DEFAULT: Outcome = { verdict: PAL.VERDICT_DENY, cookie: 0, flags: 0 };

function decide(rule: CRule): Outcome {
  return {
    verdict: rule.action === 'Deny' ? PAL.VERDICT_DENY : PAL.VERDICT_ALLOW,
    cookie: rule.cookie,
    flags: rule.flags,
  };
}

/** Peer context of one evaluation. */
interface Peer {
  ok(rule: CRule): boolean;
  readonly dst: readonly ContainerPort[];
  readonly ownNode: boolean;
}

/** The tier walk of docs/semantics.md at one point; returns the outcome and the position of the first rule that matched. */
function walk(
  admin: readonly CRule[],
  np: readonly CRule[],
  isolated: boolean,
  baseline: readonly CRule[],
  peer: Peer,
  proto: Protocol | 'other',
  port: number,
): { o: Outcome; first: number } {
  const m = (r: CRule): boolean => peer.ok(r) && portMatches(r, proto, port, peer.dst);
  let first = -1;
  let pos = 0;
  let passed = false;
  for (const r of admin) {
    if (m(r)) {
      if (first < 0) first = pos;
      if (r.action === 'Pass') {
        passed = true;
        break;
      }
      return { o: decide(r), first };
    }
    pos++;
  }
  if (passed) pos = admin.length;
  if (isolated) {
    for (const r of np) {
      if (m(r)) return { o: decide(r), first: first < 0 ? pos : first };
      pos++;
    }
    return { o: peer.ownNode ? ALLOW_DEFAULT : DENY_DEFAULT, first: first < 0 ? pos : first };
  }
  pos += np.length + 1;
  for (const r of baseline) {
    if (r.action !== 'Pass' && m(r)) return { o: decide(r), first: first < 0 ? pos : first };
    pos++;
  }
  return { o: ALLOW_DEFAULT, first: first < 0 ? pos : first };
}

function evaluate(p: Program, peer: Peer, proto: Protocol | 'other', port: number): Val {
  const isolated = p.isolatedBy.length > 0;
  const e = walk(p.admin, p.np, isolated, p.baseline, peer, proto, port);
  const total = p.admin.length + p.np.length + 1 + p.baseline.length + 1;
  const rank = total - e.first;
  let staged = PAL.STAGED_NONE as number;
  let stagedCookie = 0;
  if (p.hasAudit) {
    const s = walk(p.adminStaged, p.np, isolated, p.baselineStaged, peer, proto, port);
    staged = s.o.verdict === PAL.VERDICT_ALLOW ? PAL.STAGED_ALLOW : PAL.STAGED_DENY;
    stagedCookie = s.o.cookie;
  }
  const answer = `${e.o.verdict},${e.o.cookie},${e.o.flags},${staged},${stagedCookie}`;
  return {
    verdict: e.o.verdict,
    cookie: e.o.cookie,
    flags: e.o.flags,
    staged,
    stagedCookie,
    rank,
    answer,
    full: `${answer},${rank}`,
  };
}

interface Run {
  start: number;
  end: number;
  val: Val;
  need: boolean;
}

/** Port boundaries where any rule's match can change, for one protocol. */
function boundaries(
  rules: readonly CRule[],
  proto: Protocol,
  dst: readonly ContainerPort[],
): number[] {
  const b = new Set<number>([0]);
  for (const r of rules) {
    if (r.ports === 'all') continue;
    for (const pm of r.ports) {
      if (pm.kind === 'range' && pm.protocol === proto) {
        b.add(pm.start);
        if (pm.end < 65535) b.add(pm.end + 1);
      }
    }
  }
  for (const cp of dst) {
    if (cp.protocol !== proto || cp.name === null) continue;
    b.add(cp.containerPort);
    if (cp.containerPort < 65535) b.add(cp.containerPort + 1);
  }
  return [...b].sort((x, y) => x - y);
}

export interface TableInput {
  readonly program: Program;
  readonly identities: readonly IdentityInfo[];
  readonly byNumber: ReadonlyMap<number, IdentityInfo>;
  /**
   * Entries per (program, peer signature), shared across the tables of one
   * compile: tables that differ only in their exempt node or in which
   * identities they hold evaluate each signature once.
   */
  readonly templateCache?: Map<string, Map<string, readonly Template[]>>;
  /** Identities each peer matcher selects (for the program's cluster), memoized by the caller. */
  readonly matched: (m: PeerMatcher) => ReadonlySet<number>;
  /** Identities of the exempt node's addresses. */
  readonly nodeIdentities: (node: string) => readonly number[];
  /** Texts of matched identity sets, shared by the tables of one compile (fingerprints). */
  readonly setTextCache?: SetTextCache;
  /** Identities with named ports and their ports, as text (computed once per compile by the caller). */
  readonly namedPortText?: string;
  /** Encoded keys shared by the tables of one compile (keys are never mutated). */
  readonly keyCache?: KeyCache;
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

function allRules(p: Program): CRule[] {
  return [...p.adminStaged, ...p.np, ...p.baselineStaged];
}

interface Emit {
  push(prefixlen: number, protocol: number, port: number, v: Val): void;
}

/**
 * Emits one peer's entries: `need(val, proto, start)` says where its answer
 * must be given; elsewhere entries are optional (same answer either way).
 */
function emitPeer(
  other: { val: Val; need: boolean },
  runsByProto: ReadonlyMap<Protocol, Run[]>,
  out: Emit,
): void {
  const wide = other.need; // a /32 entry answers protocols without ports, and is the fallback of all others
  if (wide) out.push(32, 0, 0, other.val);
  for (const proto of PROTOS) {
    const runs = runsByProto.get(proto) as Run[];
    const covers = runs.map((r) => portRangeCoverSize(r.start, r.end));
    const total = covers.reduce((a, b) => a + b, 0);
    // Option A: no proto-wide entry (fallback is the /32 entry, or ANY).
    let bestCost = 0;
    runs.forEach((r, i) => {
      if (wide ? r.val.full !== other.val.full : r.need) bestCost += covers[i] as number;
    });
    let bg: Val | null = null;
    // Option B: a proto-wide /40 entry with the value covering most blocks.
    const byVal = new Map<string, { val: Val; blocks: number }>();
    runs.forEach((r, i) => {
      const e = byVal.get(r.val.full) ?? { val: r.val, blocks: 0 };
      e.blocks += covers[i] as number;
      byVal.set(r.val.full, e);
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
    for (const r of runs) {
      const covered =
        bg !== null ? r.val.full !== bg.full : wide ? r.val.full !== other.val.full : r.need;
      if (!covered) continue;
      for (const b of portRangeCover(r.start, r.end)) out.push(40 + b.bits, pnum, b.port, r.val);
    }
  }
}

export interface CompiledTableEntries {
  readonly entries: MapEntry[];
  readonly identitiesWithEntries: number;
}

export interface Template {
  readonly prefixlen: number;
  readonly protocol: number;
  readonly port: number;
  readonly value: Uint8Array;
}

interface Row {
  readonly prefixlen: number;
  readonly identity: number;
  readonly protocol: number;
  readonly port: number;
  readonly value: Uint8Array;
}

function templates(emit: (out: Emit) => void, specific: boolean): Template[] {
  const list: Template[] = [];
  emit({
    push(prefixlen, protocol, port, v) {
      list.push({
        prefixlen,
        protocol,
        port,
        value: encodePolicyValue({
          verdict: v.verdict,
          stagedVerdict: v.staged,
          flags: v.flags,
          precedence: 2 * v.rank + (specific ? 1 : 0),
          cookie: v.cookie,
          stagedCookie: v.stagedCookie,
        }),
      });
    },
  });
  return list;
}

export interface TablePlan {
  /**
   * Everything the entries depend on, as text: the program (rules in order
   * with cookie, action, flags, ports), and each identity that may differ
   * from ANY with the rules its peer matches, its named ports and node
   * exemption. Equal fingerprints give byte-identical entries.
   */
  readonly fingerprint: string;
  build(): CompiledTableEntries;
}

const ruleText = (r: CRule): string =>
  `${r.cookie}:${r.action}:${r.flags}:${r.peers === null ? '*' : 'p'}:${JSON.stringify(r.ports)}`;

/** All entries of one table, sorted by key bytes. */
export function compileTable(t: TableInput): CompiledTableEntries {
  return planTable(t).build();
}

/** Per-compile cache of the text of each matched identity set (fingerprints). */
export type SetTextCache = WeakMap<ReadonlySet<number>, { ingress?: string; egress?: string }>;

/** The identities of a matched set, with their named ports for egress (what a table's entries can depend on). */
function setText(t: TableInput, set: ReadonlySet<number>, egress: boolean): string {
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
  if (egress) c.egress = text;
  else c.ingress = text;
  return text;
}

function namedPortIdentities(t: TableInput): string {
  return t.identities
    .filter((id) => id.ports.length > 0)
    .map((id) => `${id.number}${JSON.stringify(id.ports)}`)
    .join(' ');
}

export function planTable(t: TableInput): TablePlan {
  const p = t.program;
  const rules = allRules(p);
  const egress = p.direction === 'Egress';
  const pos = new Map(rules.map((r, i) => [r, i]));
  const refs = (rs: readonly CRule[]): string => rs.map((r) => pos.get(r)).join(',');
  const program = [
    p.direction,
    rules.map(ruleText).join(';'),
    refs(p.admin),
    refs(p.np),
    refs(p.baseline),
    p.hasAudit ? 1 : 0,
    p.isolatedBy.length > 0 ? 1 : 0,
    JSON.stringify(p.dstPorts),
  ].join('\n');
  // Everything the relevant identities and their signatures derive from: the
  // identities each rule's peers match (with named ports for egress), the
  // identities with named ports when an egress rule without peers uses named
  // ports, and the exempt node's identities.
  const peerText = rules
    .map((r) =>
      r.peers === null ? '' : r.peers.map((m) => setText(t, t.matched(m), egress)).join('/'),
    )
    .join('\n');
  const namedAny = egress && rules.some((r) => r.peers === null && r.usesNamedPorts);
  const exempt = p.exemptNode === null ? [] : t.nodeIdentities(p.exemptNode);
  const fingerprint = `${program}\n${peerText}\n${namedAny ? (t.namedPortText ?? namedPortIdentities(t)) : ''}\n${[...exempt].sort((x, y) => x - y).join(',')}`;
  const build = (): CompiledTableEntries => {
    const relevant = relevantIdentities(t, rules);
    // Which rules (by index) each relevant identity's peer matches.
    const matching = new Map<number, number[]>();
    rules.forEach((r, i) => {
      if (r.peers === null) return;
      const seen = new Set<number>();
      for (const m of r.peers) {
        for (const n of t.matched(m)) {
          if (seen.has(n)) continue;
          seen.add(n);
          let list = matching.get(n);
          if (list === undefined) matching.set(n, (list = []));
          list.push(i);
        }
      }
    });
    const sigs = relevant.map((n) => {
      const id = t.byNumber.get(n) as IdentityInfo;
      const ownNode = p.exemptNode !== null && id.node === p.exemptNode;
      return `${(matching.get(n) ?? []).join(',')}|${ownNode ? 1 : 0}|${egress ? JSON.stringify(id.ports) : ''}`;
    });
    return buildTable(t, program, rules, relevant, sigs, matching);
  };
  return { fingerprint, build };
}

/** The identities that may answer differently from ANY in this table, ascending. */
function relevantIdentities(t: TableInput, rules: readonly CRule[]): number[] {
  const out = new Set<number>();
  for (const r of rules) {
    if (r.peers === null) {
      if (t.program.direction === 'Egress' && r.usesNamedPorts) {
        for (const id of t.identities) if (id.ports.length > 0) out.add(id.number);
      }
      continue;
    }
    for (const m of r.peers) for (const n of t.matched(m)) out.add(n);
  }
  if (t.program.exemptNode !== null)
    for (const n of t.nodeIdentities(t.program.exemptNode)) out.add(n);
  return [...out].sort((a, b) => a - b);
}

function buildTable(
  t: TableInput,
  programText: string,
  rules: readonly CRule[],
  relevant: readonly number[],
  sigs: readonly string[],
  matching: ReadonlyMap<number, number[]>,
): CompiledTableEntries {
  const p = t.program;
  const anyRules = new Set(rules.filter((r) => r.peers === null));
  const anyPeer: Peer = {
    ok: (r) => anyRules.has(r),
    dst: p.direction === 'Ingress' ? p.dstPorts : [],
    ownNode: false,
  };
  const anyCache = new Map<string, Val>();
  const anyAt = (proto: Protocol, port: number): Val => {
    const k = `${proto}${port}`;
    let v = anyCache.get(k);
    if (v === undefined) anyCache.set(k, (v = evaluate(p, anyPeer, proto, port)));
    return v;
  };
  const rows: Row[] = [];
  const runsFor = (
    peer: Peer,
    need: (v: Val, proto: Protocol, port: number) => boolean,
  ): Map<Protocol, Run[]> => {
    const m = new Map<Protocol, Run[]>();
    for (const proto of PROTOS) {
      const bs = boundaries(rules, proto, peer.dst);
      const runs: Run[] = [];
      bs.forEach((start, i) => {
        const end = i + 1 < bs.length ? (bs[i + 1] as number) - 1 : 65535;
        const val = evaluate(p, peer, proto, start);
        const nd = need(val, proto, start);
        const last = runs[runs.length - 1];
        if (last !== undefined && last.val.full === val.full) {
          last.end = end;
          last.need ||= nd;
        } else runs.push({ start, end, val, need: nd });
      });
      m.set(proto, runs);
    }
    return m;
  };
  const add = (identity: number, ts: readonly Template[]): void => {
    for (const x of ts)
      rows.push({
        prefixlen: x.prefixlen,
        identity,
        protocol: x.protocol,
        port: x.port,
        value: x.value,
      });
  };

  // ANY: needed wherever the answer is not "no entry".
  const anyOther = evaluate(p, anyPeer, 'other', 0);
  let cache = t.templateCache?.get(programText);
  if (cache === undefined) {
    cache = new Map<string, readonly Template[]>();
    t.templateCache?.set(programText, cache);
  }
  const anyKey = 'ANY';
  let anyTs = cache.get(anyKey);
  if (anyTs === undefined) {
    anyTs = templates(
      (out) =>
        emitPeer(
          { val: anyOther, need: anyOther.answer !== NO_ENTRY_ANSWER },
          runsFor(anyPeer, (v) => v.answer !== NO_ENTRY_ANSWER),
          out,
        ),
      false,
    );
    cache.set(anyKey, anyTs);
  }
  add(PAL.ID_ANY, anyTs);

  // Identities: needed wherever the answer differs from ANY's. Identities
  // with the same signature (rules matched, node exemption, named ports) get
  // the same entries: computed once per signature.
  let withEntries = 0;
  relevant.forEach((n, k) => {
    const id = t.byNumber.get(n) as IdentityInfo;
    const sig = sigs[k] as string;
    let ts = cache.get(sig);
    if (ts === undefined) {
      const ok = new Set((matching.get(n) ?? []).map((i) => rules[i] as CRule));
      const peer: Peer = {
        ok: (r) => r.peers === null || ok.has(r),
        dst: p.direction === 'Ingress' ? p.dstPorts : id.ports,
        ownNode: p.exemptNode !== null && id.node === p.exemptNode,
      };
      const other = evaluate(p, peer, 'other', 0);
      const runs = runsFor(peer, (v, proto, port) => v.answer !== anyAt(proto, port).answer);
      ts = templates(
        (out) => emitPeer({ val: other, need: other.answer !== anyOther.answer }, runs, out),
        true,
      );
      cache.set(sig, ts);
    }
    if (ts.length > 0) withEntries++;
    add(n, ts);
  });
  // Key bytes order = (prefixlen, identity, protocol, port) numerically.
  rows.sort(
    (a, b) =>
      a.prefixlen - b.prefixlen ||
      a.identity - b.identity ||
      a.protocol - b.protocol ||
      a.port - b.port,
  );
  const entries: MapEntry[] = rows.map((r) => ({
    key: policyKey(t.keyCache, r.prefixlen, r.identity, r.protocol, r.port),
    value: r.value,
  }));
  return { entries, identitiesWithEntries: withEntries };
}

export type { Direction };
