/**
 * Native flow records (FORMATS.md "Native flow record"): Hubble's envelope and
 * field names plus rule-level attribution, staged verdict and honest loss.
 * Pure: the caller supplies every lookup and the clock offset.
 */
import { hash } from 'node:crypto';
import type { RuleRef, TierName } from '../../../policy-compiler/src/engine.js';
import type { PalEvent } from './event-decode.js';
import { icmpTypeCode } from './event-decode.js';

export type FlowVerdict = 'FORWARDED' | 'DROPPED' | 'AUDIT';

export interface EndpointInfo {
  /** Endpoint id (DESIGN.md §3): `<cluster>/<ns>/<pod>`, `node:<cluster>/<node>`, `ip:<addr>`. */
  readonly id: string;
  readonly cluster: string;
  readonly namespace: string;
  readonly pod: string;
  /** Pod UID when known. */
  readonly uid?: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface PolicyRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly revision: string;
}

/** What a cookie-0 deny is attributed to, so `*_denied_by` is never empty. */
export interface DefaultDenyAttribution {
  /** NetworkPolicies that isolate the endpoint for that direction. */
  readonly isolatedBy: readonly PolicyRef[];
}

export interface FlowContext {
  /** `<cluster>/<node>` of this agent. */
  readonly nodeName: string;
  readonly cluster: string;
  /** Cookie registry (EncodedTables.cookies). */
  readonly rule: (cookie: number) => RuleRef | undefined;
  /** Endpoint owning an address; identity given for callers that key on it. */
  readonly endpoint: (ip: string, identity: number) => EndpointInfo | undefined;
  /** Isolating policies of a local endpoint for one direction (default deny). */
  readonly isolation?: (
    endpointId: string,
    direction: 'INGRESS' | 'EGRESS',
  ) => readonly PolicyRef[];
  /** Added to the event's CLOCK_MONOTONIC ns to get Unix ns. */
  readonly clockOffsetNs: bigint;
}

export interface FlowRule {
  readonly tier: TierName | 'Default';
  readonly priority: number | null;
  readonly index: number;
  readonly name: string;
  readonly cookie: number;
}

export interface FlowEndpoint {
  readonly endpoint_id: string;
  readonly identity: number;
  readonly cluster_name: string;
  readonly namespace: string;
  readonly pod_name: string;
  readonly pod_uid?: string;
  readonly labels: string[];
}

export type FlowL4 =
  | {
      readonly TCP: {
        source_port: number;
        destination_port: number;
        flags: Record<string, boolean>;
      };
    }
  | { readonly UDP: { source_port: number; destination_port: number } }
  | { readonly SCTP: { source_port: number; destination_port: number } }
  | { readonly ICMPv4: { type: number; code: number } }
  | { readonly ICMPv6: { type: number; code: number } }
  | { readonly other: { protocol: number } };

export interface Flow {
  readonly time: string;
  readonly uuid: string;
  readonly verdict: FlowVerdict;
  readonly drop_reason_desc?: string;
  readonly event_type: PalEvent['type'];
  readonly IP: {
    source: string;
    destination: string;
    ipVersion: 'IPv4' | 'IPv6';
    encrypted: boolean;
  };
  readonly l4: FlowL4;
  readonly source: FlowEndpoint;
  readonly destination: FlowEndpoint;
  readonly traffic_direction: 'INGRESS' | 'EGRESS';
  readonly is_reply: boolean;
  readonly Type: 'L3_L4';
  readonly node_name: string;
  readonly egress_allowed_by?: PolicyRef[];
  readonly ingress_allowed_by?: PolicyRef[];
  readonly egress_denied_by?: PolicyRef[];
  readonly ingress_denied_by?: PolicyRef[];
  readonly rule: FlowRule;
  readonly staged?: { verdict: 'Allow' | 'Deny'; rule: FlowRule };
  readonly traffic: { packets: number; bytes: number };
  /** config.revision of the datapath when the verdict was taken. */
  readonly datapath_revision: number;
  /** Deny events the datapath's rate limit suppressed before this one. */
  readonly suppressed_before?: number;
}

export interface FlowRecord {
  readonly flow: Flow;
  readonly node_name: string;
  readonly time: string;
}

export interface LostEventsRecord {
  readonly lost_events: {
    readonly source: string;
    readonly num_events_lost: number;
    readonly first: string;
    readonly last: string;
  };
  readonly node_name: string;
  readonly time: string;
}

export type AnyFlowRecord = FlowRecord | LostEventsRecord;

export const isFlowRecord = (r: AnyFlowRecord): r is FlowRecord => 'flow' in r;

/** RFC 3339 with nanoseconds, UTC, from Unix ns. */
export function rfc3339Nano(unixNs: bigint): string {
  const ms = unixNs / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // ...SS.mmmZ
  const frac = (unixNs % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${frac}Z`;
}

/**
 * rfc3339Nano for a stream of timestamps that mostly fall in the same second:
 * the `YYYY-MM-DDTHH:MM:SS` prefix is formatted once per second.
 */
class TimeFormatter {
  /** Unix ns at the start of the cached second; undefined until the first call. */
  private secondStartNs: bigint | undefined;
  private prefix = '';
  format(unixNs: bigint): string {
    if (this.secondStartNs !== undefined) {
      const d = unixNs - this.secondStartNs;
      if (d >= 0n && d < 1_000_000_000n) return `${this.prefix}.${fraction(Number(d))}Z`;
    }
    if (unixNs < 0n) return rfc3339Nano(unixNs);
    const frac = unixNs % 1_000_000_000n;
    this.secondStartNs = unixNs - frac;
    this.prefix = new Date(Number(this.secondStartNs / 1_000_000n)).toISOString().slice(0, 19);
    return `${this.prefix}.${fraction(Number(frac))}Z`;
  }
}
const fraction = (ns: number): string => {
  const t = String(ns);
  return t.length === 9 ? t : '000000000'.slice(t.length) + t;
};

const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;

/** Every flags byte's object, built once and shared (records are read-only). */
const TCP_FLAGS: readonly Readonly<Record<string, boolean>>[] = Array.from(
  { length: 256 },
  (_, bits) => {
    const out: Record<string, boolean> = {};
    TCP_FLAG_NAMES.forEach((n, i) => {
      if (bits & (1 << i)) out[n] = true;
    });
    return Object.freeze(out);
  },
);

function l4Of(ev: PalEvent): FlowL4 {
  switch (ev.protocol) {
    case 6:
      return {
        TCP: {
          source_port: ev.sport,
          destination_port: ev.dport,
          flags: TCP_FLAGS[ev.tcpFlags & 0xff] as Record<string, boolean>,
        },
      };
    case 17:
      return { UDP: { source_port: ev.sport, destination_port: ev.dport } };
    case 132:
      return { SCTP: { source_port: ev.sport, destination_port: ev.dport } };
    case 1:
      return { ICMPv4: icmpTypeCode(ev) };
    case 58:
      return { ICMPv6: icmpTypeCode(ev) };
    default:
      return { other: { protocol: ev.protocol } };
  }
}

/** Labels in Hubble's `k8s:key=value` form, sorted. */
export function hubbleLabels(labels: Readonly<Record<string, string>>): string[] {
  return Object.keys(labels)
    .sort()
    .map((k) => `k8s:${k}=${labels[k]}`);
}

/** Endpoint blocks are immutable and shared per (endpoint, identity): records are hot. */
const endpointCache = new WeakMap<EndpointInfo, Map<number, FlowEndpoint>>();

function endpointOf(ctx: FlowContext, ip: string, identity: number): FlowEndpoint {
  const info = ctx.endpoint(ip, identity);
  if (!info) {
    return {
      endpoint_id: `ip:${ip}`,
      identity,
      cluster_name: '',
      namespace: '',
      pod_name: '',
      labels: [],
    };
  }
  let byIdentity = endpointCache.get(info);
  if (!byIdentity) endpointCache.set(info, (byIdentity = new Map()));
  let ep = byIdentity.get(identity);
  if (!ep) {
    ep = Object.freeze({
      endpoint_id: info.id,
      identity,
      cluster_name: info.cluster,
      namespace: info.namespace,
      pod_name: info.pod,
      ...(info.uid ? { pod_uid: info.uid } : {}),
      labels: Object.freeze(hubbleLabels(info.labels)) as string[],
    });
    byIdentity.set(identity, ep);
  }
  return ep;
}

const policyOf = (r: RuleRef): PolicyRef => ({
  kind: r.kind,
  namespace: r.namespace ?? '',
  name: r.name,
  revision: r.revision,
});

function ruleOf(r: RuleRef | undefined, cookie: number, verdict: 'Allow' | 'Deny'): FlowRule {
  if (!r) {
    return {
      tier: 'Default',
      priority: null,
      index: -1,
      name: verdict === 'Allow' ? 'default-allow' : 'default-deny',
      cookie,
    };
  }
  return { tier: r.tier, priority: r.priority, index: r.ruleIndex, name: r.ruleName, cookie };
}

/**
 * The constant parts of records, built once per context and shared by every
 * record that needs them (frozen: records are read-only): per cookie the
 * deciding policy list and rule, per verdict the default rule, the default
 * deny attributions. A new context (recompile) gets a new cache.
 */
class Fragments {
  private readonly policyLists = new Map<RuleRef, readonly PolicyRef[]>();
  private readonly known = new Map<RuleRef, FlowRule>();
  private readonly rules = new Map<string, FlowRule>();
  private readonly isolation = new WeakMap<readonly PolicyRef[], readonly PolicyRef[]>();
  private readonly defaults = new Map<string, readonly PolicyRef[]>();
  readonly time = new TimeFormatter();

  constructor(readonly ctx: FlowContext) {}

  policyList(ref: RuleRef): PolicyRef[] {
    let l = this.policyLists.get(ref);
    if (!l) {
      l = Object.freeze([Object.freeze(policyOf(ref))]);
      this.policyLists.set(ref, l);
    }
    return l as PolicyRef[];
  }

  rule(ref: RuleRef | undefined, cookie: number, verdict: 'Allow' | 'Deny'): FlowRule {
    if (ref) {
      let r = this.known.get(ref);
      if (!r || r.cookie !== cookie) {
        r = Object.freeze(ruleOf(ref, cookie, verdict));
        this.known.set(ref, r);
      }
      return r;
    }
    // cookie 0 or one the registry does not know (an event from before a recompile)
    const key = `${cookie}/${verdict}`;
    let r = this.rules.get(key);
    if (!r) {
      if (this.rules.size > 1024) this.rules.clear(); // bounded whatever the events say
      r = Object.freeze(ruleOf(undefined, cookie, verdict));
      this.rules.set(key, r);
    }
    return r;
  }

  /** Why a cookie-0 deny happened, as a policy reference (never empty). */
  defaultDeny(ev: PalEvent, local: FlowEndpoint): PolicyRef[] {
    if (ev.dropReason === 'NO_ENDPOINT_POLICY')
      return this.fixed('FailClosed', 'endpoint policy not loaded', ev.revision);
    const iso = this.ctx.isolation?.(local.endpoint_id, ev.direction);
    if (iso && iso.length > 0) {
      let copy = this.isolation.get(iso);
      if (!copy) {
        copy = Object.freeze([...iso]);
        this.isolation.set(iso, copy);
      }
      return copy as PolicyRef[];
    }
    return this.fixed('DefaultDeny', 'default deny of tier NetworkPolicy', ev.revision);
  }

  private fixed(kind: string, name: string, revision: number): PolicyRef[] {
    const key = `${kind}/${revision}`;
    let l = this.defaults.get(key);
    if (!l) {
      if (this.defaults.size > 64) this.defaults.clear(); // revisions move on; stay bounded
      l = Object.freeze([Object.freeze({ kind, namespace: '', name, revision: String(revision) })]);
      this.defaults.set(key, l);
    }
    return l as PolicyRef[];
  }
}

const fragmentCache = new WeakMap<FlowContext, Fragments>();
function fragmentsOf(ctx: FlowContext): Fragments {
  let f = fragmentCache.get(ctx);
  if (!f) fragmentCache.set(ctx, (f = new Fragments(ctx)));
  return f;
}

/** Deterministic record id: a name-based UUID (v5 layout) of node + raw event. */
export function flowUuid(nodeName: string, raw: Uint8Array): string {
  const buf = uuidInput(nodeName, raw.byteLength);
  buf.set(raw, buf.byteLength - raw.byteLength);
  // one-shot hash straight to hex: no Buffer for the digest, no concat per record
  const x = hash('sha1', buf, 'hex');
  // v5 layout: version nibble 5 (char 12), variant 10xx (char 16)
  const variant = HEX_VARIANT[x.charCodeAt(16)] as string;
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-5${x.slice(13, 16)}-${variant}${x.slice(17, 20)}-${x.slice(20, 32)}`;
}

/** char code of a hex digit → the digit with its two top bits set to 10. */
const HEX_VARIANT: string[] = (() => {
  const out: string[] = [];
  for (const c of '0123456789abcdef')
    out[c.charCodeAt(0)] = ((parseInt(c, 16) & 0x3) | 0x8).toString(16);
  return out;
})();

/** node name, a zero byte, then room for the event: reused while the node and size stay. */
let uuidBuf: { node: string; size: number; buf: Buffer } | undefined;
function uuidInput(nodeName: string, rawSize: number): Buffer {
  if (!uuidBuf || uuidBuf.node !== nodeName || uuidBuf.size !== rawSize) {
    const node = Buffer.from(nodeName);
    const buf = Buffer.alloc(node.byteLength + 1 + rawSize);
    node.copy(buf, 0);
    uuidBuf = { node: nodeName, size: rawSize, buf };
  }
  return uuidBuf.buf;
}

function verdictOf(ev: PalEvent): FlowVerdict {
  switch (ev.type) {
    case 'NEW_ALLOWED':
      return 'FORWARDED';
    case 'AUDIT':
      return 'AUDIT';
    case 'DENY':
    case 'REVOKED':
      return 'DROPPED';
  }
}

/**
 * A record built from an event (what toFlowRecord returns). A class, so the
 * serializer can tell these records, whose key order and shared parts it
 * knows, from any other object (serialize.ts); its only constructor builds
 * the flow itself, so every instance has the documented shape. JSON.stringify
 * sees the same own properties as for a literal: flow, node_name, time.
 */
export class NativeFlowRecord implements FlowRecord {
  readonly flow: Flow;
  readonly node_name: string;
  readonly time: string;
  constructor(ev: PalEvent, ctx: FlowContext) {
    const frag = fragmentsOf(ctx);
    const time = frag.time.format(ev.tsNs + ctx.clockOffsetNs);
    this.flow = buildFlow(ev, ctx, frag, time);
    this.node_name = ctx.nodeName;
    this.time = time;
  }
}

/**
 * The flow object, keys in the documented order (docs/enforcer.md; the
 * serializer relies on it); the constant parts (endpoint blocks, policy
 * lists, rules, TCP flags) are shared.
 */
function buildFlow(ev: PalEvent, ctx: FlowContext, frag: Fragments, time: string): Flow {
  const source = endpointOf(ctx, ev.saddr, ev.srcIdentity);
  const destination = endpointOf(ctx, ev.daddr, ev.dstIdentity);
  const verdict = verdictOf(ev);
  const enforced: 'Allow' | 'Deny' =
    ev.verdict === 'ALLOW' && ev.type !== 'REVOKED' ? 'Allow' : 'Deny';
  const ref = ev.cookie !== 0 ? ctx.rule(ev.cookie) : undefined;
  const egress = ev.direction === 'EGRESS';
  const f: Record<string, unknown> = { time, uuid: flowUuid(ctx.nodeName, ev.raw), verdict };
  if (verdict === 'DROPPED') f.drop_reason_desc = ev.type === 'REVOKED' ? 'REVOKED' : ev.dropReason;
  f.event_type = ev.type;
  f.IP = {
    source: ev.saddr,
    destination: ev.daddr,
    ipVersion: ev.ipVersion === 4 ? 'IPv4' : 'IPv6',
    encrypted: false,
  };
  f.l4 = l4Of(ev);
  f.source = source;
  f.destination = destination;
  f.traffic_direction = ev.direction;
  // Events are taken on the first packet of a connection (new allowed) or on
  // a packet no connection covers (deny); neither is a reply.
  f.is_reply = false;
  f.Type = 'L3_L4';
  f.node_name = ctx.nodeName;
  // Only the direction the event was taken in is attributed.
  if (enforced === 'Allow') {
    if (ref) f[egress ? 'egress_allowed_by' : 'ingress_allowed_by'] = frag.policyList(ref);
  } else {
    f[egress ? 'egress_denied_by' : 'ingress_denied_by'] = ref
      ? frag.policyList(ref)
      : frag.defaultDeny(ev, egress ? source : destination);
  }
  f.rule = frag.rule(ref, ev.cookie, enforced);
  if (ev.stagedVerdict !== 'NONE') {
    const sv = ev.stagedVerdict === 'ALLOW' ? 'Allow' : 'Deny';
    const sref = ev.stagedCookie !== 0 ? ctx.rule(ev.stagedCookie) : undefined;
    f.staged = { verdict: sv, rule: frag.rule(sref, ev.stagedCookie, sv) };
  }
  f.traffic = { packets: 1, bytes: ev.pktLen };
  f.datapath_revision = ev.revision;
  if (ev.suppressedBefore > 0) f.suppressed_before = ev.suppressedBefore;
  return f as unknown as Flow;
}

/** Turns one decoded event into a native flow record. */
export function toFlowRecord(ev: PalEvent, ctx: FlowContext): FlowRecord {
  return new NativeFlowRecord(ev, ctx);
}

/** The periodic loss record (FORMATS.md): `first`/`last` bound when the losses happened. */
export function lostEventsRecord(
  nodeName: string,
  source: string,
  count: number,
  first: Date,
  last: Date,
  now: Date,
): LostEventsRecord {
  return {
    lost_events: {
      source,
      num_events_lost: count,
      first: first.toISOString(),
      last: last.toISOString(),
    },
    node_name: nodeName,
    time: now.toISOString(),
  };
}
