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

const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;

function tcpFlags(bits: number): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  TCP_FLAG_NAMES.forEach((n, i) => {
    if (bits & (1 << i)) out[n] = true;
  });
  return out;
}

function l4Of(ev: PalEvent): FlowL4 {
  switch (ev.protocol) {
    case 6:
      return {
        TCP: { source_port: ev.sport, destination_port: ev.dport, flags: tcpFlags(ev.tcpFlags) },
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

/** Why a cookie-0 deny happened, as a policy reference (never empty). */
function defaultDenyRefs(ctx: FlowContext, ev: PalEvent, local: FlowEndpoint): PolicyRef[] {
  if (ev.dropReason === 'NO_ENDPOINT_POLICY') {
    return [
      {
        kind: 'FailClosed',
        namespace: '',
        name: 'endpoint policy not loaded',
        revision: String(ev.revision),
      },
    ];
  }
  const iso = ctx.isolation?.(local.endpoint_id, ev.direction) ?? [];
  if (iso.length > 0) return [...iso];
  return [
    {
      kind: 'DefaultDeny',
      namespace: '',
      name: 'default deny of tier NetworkPolicy',
      revision: String(ev.revision),
    },
  ];
}

/** Deterministic record id: a name-based UUID (v5 layout) of node + raw event. */
export function flowUuid(nodeName: string, raw: Uint8Array): string {
  // crypto.hash (one-shot) is several times cheaper than createHash per record.
  const h = hash('sha1', Buffer.concat([Buffer.from(nodeName), ZERO, raw]), 'buffer');
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
const ZERO = Buffer.from([0]);

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

/** Turns one decoded event into a native flow record. */
export function toFlowRecord(ev: PalEvent, ctx: FlowContext): FlowRecord {
  const time = rfc3339Nano(ev.tsNs + ctx.clockOffsetNs);
  const source = endpointOf(ctx, ev.saddr, ev.srcIdentity);
  const destination = endpointOf(ctx, ev.daddr, ev.dstIdentity);
  const verdict = verdictOf(ev);
  const enforced: 'Allow' | 'Deny' =
    ev.verdict === 'ALLOW' && ev.type !== 'REVOKED' ? 'Allow' : 'Deny';
  const ref = ev.cookie !== 0 ? ctx.rule(ev.cookie) : undefined;
  const dir = ev.direction === 'EGRESS' ? 'egress' : 'ingress';
  const local = ev.direction === 'EGRESS' ? source : destination;
  const attribution: Partial<
    Record<`${'egress' | 'ingress'}_${'allowed' | 'denied'}_by`, PolicyRef[]>
  > = {};
  if (enforced === 'Allow') {
    if (ref) attribution[`${dir}_allowed_by`] = [policyOf(ref)];
  } else {
    attribution[`${dir}_denied_by`] = ref ? [policyOf(ref)] : defaultDenyRefs(ctx, ev, local);
  }
  let staged: Flow['staged'];
  if (ev.stagedVerdict !== 'NONE') {
    const sv = ev.stagedVerdict === 'ALLOW' ? 'Allow' : 'Deny';
    const sref = ev.stagedCookie !== 0 ? ctx.rule(ev.stagedCookie) : undefined;
    staged = { verdict: sv, rule: ruleOf(sref, ev.stagedCookie, sv) };
  }
  let dropReason: string | undefined;
  if (verdict === 'DROPPED') dropReason = ev.type === 'REVOKED' ? 'REVOKED' : ev.dropReason;
  const flow: Flow = {
    time,
    uuid: flowUuid(ctx.nodeName, ev.raw),
    verdict,
    ...(dropReason ? { drop_reason_desc: dropReason } : {}),
    event_type: ev.type,
    IP: {
      source: ev.saddr,
      destination: ev.daddr,
      ipVersion: ev.ipVersion === 4 ? 'IPv4' : 'IPv6',
      encrypted: false,
    },
    l4: l4Of(ev),
    source,
    destination,
    traffic_direction: ev.direction,
    // Events are taken on the first packet of a connection (new allowed) or on
    // a packet no connection covers (deny); neither is a reply.
    is_reply: false,
    Type: 'L3_L4',
    node_name: ctx.nodeName,
    ...attribution,
    rule: ruleOf(ref, ev.cookie, enforced),
    ...(staged ? { staged } : {}),
    traffic: { packets: 1, bytes: ev.pktLen },
    datapath_revision: ev.revision,
    ...(ev.suppressedBefore > 0 ? { suppressed_before: ev.suppressedBefore } : {}),
  };
  return { flow, node_name: ctx.nodeName, time };
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
