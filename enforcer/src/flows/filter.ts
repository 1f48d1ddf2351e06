/**
 * CEL flow filters (CEL.md) over @marcbachmann/cel-js, behind a two-call
 * interface so the library can be swapped. The record is bound under one
 * root, `flow`, as a typed view (FILTER_VIEW_SCHEMA): field typos and type
 * errors are compile errors; integers are BigInt at the boundary.
 *
 * - `matches()` is rejected (JS RegExp, ReDoS); use contains/startsWith/
 *   endsWith, `in`, or `inCidr(ip, cidr)`.
 * - An evaluation error (e.g. a missing label key) means "no match".
 * - Lost-events records are not flows: callers always keep them.
 */
import { BlockList, isIP } from 'node:net';
import { Environment, type ASTNode } from '@marcbachmann/cel-js';
import type { Flow, FlowEndpoint, FlowRecord, PolicyRef } from './record.js';

export interface FilterError {
  readonly message: string;
  /** 0-based offsets into the source. */
  readonly start: number;
  readonly end: number;
  /** 1-based column of `start` (filters are one line; newlines count as columns too). */
  readonly column: number;
}

export interface FlowFilter {
  readonly source: string;
  matches(record: FlowRecord): boolean;
}

export type CompileResult = { ok: true; filter: FlowFilter } | { ok: false; error: FilterError };

export const MAX_FILTER_LENGTH = 4096;

const ENDPOINT_SCHEMA = {
  id: 'string',
  ip: 'string',
  port: 'int',
  identity: 'int',
  cluster: 'string',
  namespace: 'string',
  pod: 'string',
  labels: 'map<string, string>',
} as const;

/** The filter view: what `flow.<field>` means in a filter. Documented in docs/enforcer.md. */
export const FILTER_VIEW_SCHEMA = {
  time: 'string',
  uuid: 'string',
  verdict: 'string',
  drop_reason: 'string',
  event_type: 'string',
  direction: 'string',
  is_reply: 'bool',
  protocol: 'string',
  ip_version: 'int',
  encrypted: 'bool',
  tcp_flags: 'list<string>',
  icmp: { type: 'int', code: 'int' },
  src: ENDPOINT_SCHEMA,
  dst: ENDPOINT_SCHEMA,
  policy: { kind: 'string', namespace: 'string', name: 'string', revision: 'string' },
  rule: { tier: 'string', priority: 'int', index: 'int', name: 'string', cookie: 'int' },
  staged: { verdict: 'string', cookie: 'int' },
  packets: 'int',
  bytes: 'int',
  node: 'string',
  datapath_revision: 'int',
} as const;

function inCidr(ip: string, cidr: string): boolean {
  const slash = cidr.indexOf('/');
  const net = slash < 0 ? cidr : cidr.slice(0, slash);
  const fam = isIP(net);
  const ipFam = isIP(ip);
  if (fam === 0 || ipFam === 0) throw new Error(`inCidr: not an address: ${fam === 0 ? cidr : ip}`);
  if (fam !== ipFam) return false;
  const bits = slash < 0 ? (fam === 4 ? 32 : 128) : Number(cidr.slice(slash + 1));
  if (!Number.isInteger(bits) || bits < 0 || bits > (fam === 4 ? 32 : 128)) {
    throw new Error(`inCidr: bad prefix length in ${cidr}`);
  }
  const bl = new BlockList();
  bl.addSubnet(net, bits, fam === 4 ? 'ipv4' : 'ipv6');
  return bl.check(ip, ipFam === 4 ? 'ipv4' : 'ipv6');
}

const env = new Environment({
  limits: {
    maxAstNodes: 1000,
    maxDepth: 32,
    maxListElements: 256,
    maxMapEntries: 64,
    maxCallArguments: 8,
  },
})
  .registerVariable({ name: 'flow', schema: FILTER_VIEW_SCHEMA })
  .registerFunction('inCidr(string, string): bool', inCidr);

const FORBIDDEN_FUNCTIONS = new Set(['matches']);

/** Finds a forbidden call anywhere in the AST. */
function findForbidden(node: unknown): ASTNode | undefined {
  if (Array.isArray(node)) {
    for (const n of node) {
      const f = findForbidden(n);
      if (f) return f;
    }
    return undefined;
  }
  if (typeof node !== 'object' || node === null || !('op' in node)) return undefined;
  const n = node as ASTNode;
  if ((n.op === 'call' || n.op === 'rcall') && FORBIDDEN_FUNCTIONS.has(n.args[0])) return n;
  return findForbidden(n.args);
}

function errorAt(message: string, start: number, end: number): FilterError {
  return { message, start, end, column: start + 1 };
}

/** First line of a library message (it appends a source excerpt with a caret). */
const firstLine = (m: string): string => m.split('\n')[0]?.trim() ?? m;

function rangeOf(e: unknown): { start: number; end: number } | undefined {
  const r = (e as { range?: { start: number; end: number } }).range;
  return r && typeof r.start === 'number' ? r : undefined;
}

export function compileFilter(source: string): CompileResult {
  if (source.length > MAX_FILTER_LENGTH) {
    return {
      ok: false,
      error: errorAt(
        `filter longer than ${MAX_FILTER_LENGTH} characters`,
        MAX_FILTER_LENGTH,
        source.length,
      ),
    };
  }
  if (source.trim() === '') return { ok: false, error: errorAt('empty filter', 0, 0) };
  let program: ReturnType<typeof env.parse>;
  try {
    program = env.parse(source);
  } catch (e) {
    const r = rangeOf(e) ?? { start: 0, end: source.length };
    return { ok: false, error: errorAt(firstLine((e as Error).message), r.start, r.end) };
  }
  const bad = findForbidden(program.ast);
  if (bad) {
    return {
      ok: false,
      error: errorAt(
        'matches() is not allowed in flow filters (unbounded regex); use contains(), startsWith(), endsWith(), in, or inCidr()',
        bad.range.start,
        bad.range.end,
      ),
    };
  }
  const checked = program.check();
  if (!checked.valid) {
    const r = rangeOf(checked.error) ?? { start: 0, end: source.length };
    return {
      ok: false,
      error: errorAt(firstLine(checked.error?.message ?? 'type error'), r.start, r.end),
    };
  }
  if (checked.type !== 'bool') {
    return {
      ok: false,
      error: errorAt(
        `a filter must be a bool expression, this one is ${checked.type}`,
        0,
        source.length,
      ),
    };
  }
  return {
    ok: true,
    filter: {
      source,
      matches(record: FlowRecord): boolean {
        try {
          // lazy: the library reads only the fields the expression names
          return program({ flow: lazyFilterView(record) }) === true;
        } catch {
          return false;
        }
      },
    },
  };
}

/** Label maps of shared (frozen) label lists, built once per list. */
const labelMaps = new WeakMap<readonly string[], Record<string, string>>();

function labelsMap(labels: readonly string[]): Record<string, string> {
  if (Object.isFrozen(labels)) {
    let m = labelMaps.get(labels);
    if (!m) {
      m = Object.freeze(buildLabelsMap(labels)) as Record<string, string>;
      labelMaps.set(labels, m);
    }
    return m;
  }
  return buildLabelsMap(labels);
}

function buildLabelsMap(labels: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) {
    const s = l.startsWith('k8s:') ? l.slice(4) : l;
    const eq = s.indexOf('=');
    if (eq > 0) out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

function endpointView(ep: FlowEndpoint, ip: string, port: number) {
  return {
    id: ep.endpoint_id,
    ip,
    port: BigInt(port),
    identity: BigInt(ep.identity),
    cluster: ep.cluster_name,
    namespace: ep.namespace,
    pod: ep.pod_name,
    labels: labelsMap(ep.labels),
  };
}

function decidingPolicy(f: Flow): PolicyRef | undefined {
  for (const l of [
    f.egress_denied_by,
    f.ingress_denied_by,
    f.egress_allowed_by,
    f.ingress_allowed_by,
  ]) {
    if (l && l[0]) return l[0];
  }
  return undefined;
}

/** The record as the filter sees it (FILTER_VIEW_SCHEMA); every field present. */
export function filterView(rec: FlowRecord) {
  const f = rec.flow;
  const l4 = f.l4;
  let protocol = 'other';
  let sport = 0;
  let dport = 0;
  let flags: string[] = [];
  let icmp = { type: 0n, code: 0n };
  if ('TCP' in l4) {
    protocol = 'TCP';
    ({ source_port: sport, destination_port: dport } = l4.TCP);
    flags = Object.keys(l4.TCP.flags).filter((k) => l4.TCP.flags[k]);
  } else if ('UDP' in l4) {
    protocol = 'UDP';
    ({ source_port: sport, destination_port: dport } = l4.UDP);
  } else if ('SCTP' in l4) {
    protocol = 'SCTP';
    ({ source_port: sport, destination_port: dport } = l4.SCTP);
  } else if ('ICMPv4' in l4) {
    protocol = 'ICMPv4';
    icmp = { type: BigInt(l4.ICMPv4.type), code: BigInt(l4.ICMPv4.code) };
  } else if ('ICMPv6' in l4) {
    protocol = 'ICMPv6';
    icmp = { type: BigInt(l4.ICMPv6.type), code: BigInt(l4.ICMPv6.code) };
  }
  const p = decidingPolicy(f);
  return {
    time: f.time,
    uuid: f.uuid,
    verdict: f.verdict,
    drop_reason: f.drop_reason_desc ?? '',
    event_type: f.event_type,
    direction: f.traffic_direction,
    is_reply: f.is_reply,
    protocol,
    ip_version: f.IP.ipVersion === 'IPv4' ? 4n : 6n,
    encrypted: f.IP.encrypted,
    tcp_flags: flags,
    icmp,
    src: endpointView(f.source, f.IP.source, sport),
    dst: endpointView(f.destination, f.IP.destination, dport),
    policy: p ? { ...p } : { kind: '', namespace: '', name: '', revision: '' },
    rule: {
      tier: f.rule.tier,
      priority: BigInt(f.rule.priority ?? -1),
      index: BigInt(f.rule.index),
      name: f.rule.name,
      cookie: BigInt(f.rule.cookie),
    },
    staged: f.staged
      ? { verdict: f.staged.verdict, cookie: BigInt(f.staged.rule.cookie) }
      : { verdict: '', cookie: 0n },
    packets: BigInt(f.traffic.packets),
    bytes: BigInt(f.traffic.bytes),
    node: f.node_name,
    datapath_revision: BigInt(f.datapath_revision),
  };
}

/*
 * The lazy view: the same fields and values as filterView (a test checks
 * every field against it), computed only when the expression reads them.
 * The library reads a message's fields with `raw[field]` and converts nested
 * plain objects lazily too, so getters on a shared prototype are enough: a
 * record costs one small object, plus one per endpoint the filter touches.
 */
interface LazyFlow {
  readonly r: FlowRecord;
}
function l4Ports(f: Flow): { sport: number; dport: number } {
  const l4 = f.l4;
  if ('TCP' in l4) return { sport: l4.TCP.source_port, dport: l4.TCP.destination_port };
  if ('UDP' in l4) return { sport: l4.UDP.source_port, dport: l4.UDP.destination_port };
  if ('SCTP' in l4) return { sport: l4.SCTP.source_port, dport: l4.SCTP.destination_port };
  return { sport: 0, dport: 0 };
}

/** Views of shared (frozen) parts: rule, staged, deciding policy, TCP flag lists. */
const ruleViews = new WeakMap<object, unknown>();
function sharedView<T extends object>(o: T, make: (o: T) => unknown): unknown {
  if (!Object.isFrozen(o)) return make(o);
  let v = ruleViews.get(o);
  if (v === undefined) {
    v = make(o);
    ruleViews.set(o, v);
  }
  return v;
}

const ruleView = (r: Flow['rule']) => ({
  tier: r.tier,
  priority: BigInt(r.priority ?? -1),
  index: BigInt(r.index),
  name: r.name,
  cookie: BigInt(r.cookie),
});
const NO_POLICY = Object.freeze({ kind: '', namespace: '', name: '', revision: '' });
const NO_STAGED = Object.freeze({ verdict: '', cookie: 0n });
const NO_ICMP = Object.freeze({ type: 0n, code: 0n });

interface LazyEndpoint {
  readonly _ep: FlowEndpoint;
  readonly _ip: string;
  readonly _port: number;
}

/** Getters of an endpoint view; the data sits in `_` fields the schema cannot name. */
const ENDPOINT_VIEW: ThisType<LazyEndpoint> & Record<string, unknown> = {
  get id() {
    return this._ep.endpoint_id;
  },
  get ip() {
    return this._ip;
  },
  get port() {
    return BigInt(this._port);
  },
  get identity() {
    return BigInt(this._ep.identity);
  },
  get cluster() {
    return this._ep.cluster_name;
  },
  get namespace() {
    return this._ep.namespace;
  },
  get pod() {
    return this._ep.pod_name;
  },
  get labels() {
    return labelsMap(this._ep.labels);
  },
};

function endpointLazy(ep: FlowEndpoint, ip: string, port: number): unknown {
  // constructor is Object (via the prototype), so the library converts it as a message
  const v = Object.create(ENDPOINT_VIEW) as { _ep: FlowEndpoint; _ip: string; _port: number };
  v._ep = ep;
  v._ip = ip;
  v._port = port;
  return v;
}

const FLOW_VIEW: ThisType<LazyFlow> & Record<string, unknown> = {
  get time() {
    return this.r.flow.time;
  },
  get uuid() {
    return this.r.flow.uuid;
  },
  get verdict() {
    return this.r.flow.verdict;
  },
  get drop_reason() {
    return this.r.flow.drop_reason_desc ?? '';
  },
  get event_type() {
    return this.r.flow.event_type;
  },
  get direction() {
    return this.r.flow.traffic_direction;
  },
  get is_reply() {
    return this.r.flow.is_reply;
  },
  get protocol() {
    const l4 = this.r.flow.l4;
    for (const p of ['TCP', 'UDP', 'SCTP', 'ICMPv4', 'ICMPv6'] as const) if (p in l4) return p;
    return 'other';
  },
  get ip_version() {
    return this.r.flow.IP.ipVersion === 'IPv4' ? 4n : 6n;
  },
  get encrypted() {
    return this.r.flow.IP.encrypted;
  },
  get tcp_flags() {
    const l4 = this.r.flow.l4;
    if (!('TCP' in l4)) return [];
    return sharedView(l4.TCP.flags, (fl) => Object.keys(fl).filter((k) => fl[k]));
  },
  get icmp() {
    const l4 = this.r.flow.l4;
    if ('ICMPv4' in l4) return { type: BigInt(l4.ICMPv4.type), code: BigInt(l4.ICMPv4.code) };
    if ('ICMPv6' in l4) return { type: BigInt(l4.ICMPv6.type), code: BigInt(l4.ICMPv6.code) };
    return NO_ICMP;
  },
  get src() {
    const f = this.r.flow;
    return endpointLazy(f.source, f.IP.source, l4Ports(f).sport);
  },
  get dst() {
    const f = this.r.flow;
    return endpointLazy(f.destination, f.IP.destination, l4Ports(f).dport);
  },
  get policy() {
    const p = decidingPolicy(this.r.flow);
    return p ? sharedView(p, (x) => ({ ...x })) : NO_POLICY;
  },
  get rule() {
    return sharedView(this.r.flow.rule, ruleView);
  },
  get staged() {
    const st = this.r.flow.staged;
    return st ? { verdict: st.verdict, cookie: BigInt(st.rule.cookie) } : NO_STAGED;
  },
  get packets() {
    return BigInt(this.r.flow.traffic.packets);
  },
  get bytes() {
    return BigInt(this.r.flow.traffic.bytes);
  },
  get node() {
    return this.r.flow.node_name;
  },
  get datapath_revision() {
    return BigInt(this.r.flow.datapath_revision);
  },
};

/** The filter view of a record, each field computed on first read (same values as filterView). */
export function lazyFilterView(rec: FlowRecord): Record<string, unknown> {
  const v = Object.create(FLOW_VIEW) as { r: FlowRecord };
  v.r = rec;
  return v as unknown as Record<string, unknown>;
}
