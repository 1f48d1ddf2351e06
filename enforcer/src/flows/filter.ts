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
          return program({ flow: filterView(record) }) === true;
        } catch {
          return false;
        }
      },
    },
  };
}

function labelsMap(labels: readonly string[]): Record<string, string> {
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
