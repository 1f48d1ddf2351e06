/**
 * Byte codecs for the datapath-owned structs of bpf/include/palisade.h (the
 * ones the compiler does not encode: endpoints with their ifindex, config,
 * conntrack, counters), plus policy/ipcache encoders for hand-made test
 * tables. Host byte order is little endian on every platform we run on; the
 * _be fields are big endian as in the header. Sizes and offsets are checked
 * against the C header by test/privileged/datapath/layout.test.ts.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const SIZE = {
  endpointKey: 4,
  endpointValue: 20,
  ipcacheKey: 20,
  ipcacheValue: 20,
  policyKey: 12,
  policyValue: 72,
  ctKey: 40,
  ctValue: 40,
  config: 16,
  ruleCounter: 16,
  stat: 16,
  event: 88,
} as const;

export const EP_F_POLICY_READY = 1;
export const EP_F_HOST_NETWORK = 2;
export const EP_F_EGRESS_ISOLATED = 4;
export const EP_F_INGRESS_ISOLATED = 8;
export const EP_F_EGRESS_AUDIT = 16;
export const EP_F_INGRESS_AUDIT = 32;
export const CFG_F_AUDIT_EVENTS = 1;
export const SKB_MARK_TUNNELED = 1 << 20;
export const POLICY_KEY_FULL_PREFIX = 56;
export const ID_ANY = 0;
export const ID_WORLD = 1;

export const DIR = { egress: 0, ingress: 1 } as const;
export type DirectionName = keyof typeof DIR;

export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58, SCTP: 132 } as const;

export const DROP_REASON_NAMES = [
  'POLICY_DENIED',
  'POLICY_DENY',
  'NO_ENDPOINT_POLICY',
  'UNENCRYPTED',
  'PARSE',
  'FRAG_UNKNOWN',
  'REVOKED',
] as const;
export type DropReasonName = (typeof DROP_REASON_NAMES)[number];

// ------------------------------------------------------------- addresses

/** 16 bytes; IPv4 IPv4-mapped (::ffff:a.b.c.d) as the header requires. */
export function addr16(ip: string): Buffer {
  const b = Buffer.alloc(16);
  if (isIPv4(ip)) {
    b[10] = 0xff;
    b[11] = 0xff;
    ip.split('.').forEach((o, i) => (b[12 + i] = Number(o)));
    return b;
  }
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g as string, 16), i * 2));
  return b;
}

// -------------------------------------------------------------- endpoints

export function endpointKey(ifindex: number): Buffer {
  const b = Buffer.alloc(SIZE.endpointKey);
  b.writeUInt32LE(ifindex, 0);
  return b;
}

export interface EndpointValue {
  readonly identity: number;
  readonly egressTable: number;
  readonly ingressTable: number;
  readonly flags: number;
  /** Number of the pod's node (own-node exemption); 0 = none. */
  readonly nodeId?: number;
}

export function endpointValue(v: EndpointValue): Buffer {
  const b = Buffer.alloc(SIZE.endpointValue);
  b.writeUInt32LE(v.identity, 0);
  b.writeUInt32LE(v.egressTable, 4);
  b.writeUInt32LE(v.ingressTable, 8);
  b.writeUInt32LE(v.flags, 12);
  b.writeUInt32LE(v.nodeId ?? 0, 16);
  return b;
}

export function decodeEndpointValue(b: Uint8Array): EndpointValue {
  const x = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    identity: x.readUInt32LE(0),
    egressTable: x.readUInt32LE(4),
    ingressTable: x.readUInt32LE(8),
    flags: x.readUInt32LE(12),
    nodeId: x.readUInt32LE(16),
  };
}

// ---------------------------------------------------------------- ipcache

/** ipcache LPM key for `ip/len` (v4 lengths count from bit 96). */
export function ipcacheKey(ip: string, len?: number): Buffer {
  const b = Buffer.alloc(SIZE.ipcacheKey);
  const v4 = isIPv4(ip);
  const plen = v4 ? 96 + (len ?? 32) : (len ?? 128);
  b.writeUInt32LE(plen, 0);
  addr16(ip).copy(b, 4);
  return b;
}

export interface IpcacheExtra {
  readonly nsIdentity?: number;
  readonly cidrIdentity?: number;
  readonly nodeId?: number;
}

export function ipcacheValue(identity: number, flags = 0, extra: IpcacheExtra = {}): Buffer {
  const b = Buffer.alloc(SIZE.ipcacheValue);
  b.writeUInt32LE(identity, 0);
  b.writeUInt32LE(extra.nsIdentity ?? 0, 4);
  b.writeUInt32LE(extra.cidrIdentity ?? 0, 8);
  b.writeUInt32LE(extra.nodeId ?? 0, 12);
  b.writeUInt32LE(flags, 16);
  return b;
}

// ----------------------------------------------------------------- policy

export interface PolicyKeySpec {
  /** peer identity, ID_ANY for the wildcard */
  readonly identity: number;
  /** IP protocol number; undefined = any protocol (prefix 32) */
  readonly protocol?: number;
  /** undefined = any port */
  readonly port?: number;
  /** significant leading bits of the port (16 = exact) */
  readonly portBits?: number;
}

export function policyKey(k: PolicyKeySpec): Buffer {
  const b = Buffer.alloc(SIZE.policyKey);
  const plen = k.protocol === undefined ? 32 : k.port === undefined ? 40 : 40 + (k.portBits ?? 16);
  b.writeUInt32LE(plen, 0);
  b.writeUInt32BE(k.identity >>> 0, 4);
  b[8] = k.protocol ?? 0;
  b.writeUInt16BE(k.port ?? 0, 9);
  return b;
}

export const ACTION = { NONE: 0, ACCEPT: 1, DENY: 2, PASS: 3, ALLOW: 4 } as const;
export const TIER = { ADMIN: 0, NETWORK_POLICY: 1, BASELINE: 2 } as const;

/** struct pal_tier_match; rank 0 = no rule of the tier matched. */
export interface TierMatchSpec {
  readonly rank: number;
  readonly cookie: number;
  readonly action: number;
  readonly flags?: number;
}

/** struct pal_policy_value: per tier (TIER.*); staged defaults to enforced. */
export interface PolicyValue {
  readonly admin?: TierMatchSpec;
  readonly networkPolicy?: TierMatchSpec;
  readonly baseline?: TierMatchSpec;
  readonly staged?: {
    readonly admin?: TierMatchSpec;
    readonly networkPolicy?: TierMatchSpec;
    readonly baseline?: TierMatchSpec;
  };
}

function writeTier(b: Buffer, at: number, t: TierMatchSpec | undefined): void {
  if (t === undefined) return;
  b.writeUInt32LE(t.rank, at);
  b.writeUInt32LE(t.cookie, at + 4);
  b[at + 8] = t.action;
  b[at + 9] = t.flags ?? 0;
}

export function policyValue(v: PolicyValue): Buffer {
  const b = Buffer.alloc(SIZE.policyValue);
  const staged = v.staged ?? v;
  [v.admin, v.networkPolicy, v.baseline].forEach((t, i) => writeTier(b, i * 12, t));
  [staged.admin, staged.networkPolicy, staged.baseline].forEach((t, i) =>
    writeTier(b, 36 + i * 12, t),
  );
  return b;
}

// ----------------------------------------------------------------- config

export interface Config {
  readonly revision: number;
  readonly flags: number;
  readonly denyEventsPerSec: number;
}

export function configValue(c: Config): Buffer {
  const b = Buffer.alloc(SIZE.config);
  b.writeUInt32LE(c.revision >>> 0, 0);
  b.writeUInt32LE(c.flags, 4);
  b.writeUInt32LE(c.denyEventsPerSec, 8);
  return b;
}

export function decodeConfig(b: Uint8Array): Config {
  const x = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    revision: x.readUInt32LE(0),
    flags: x.readUInt32LE(4),
    denyEventsPerSec: x.readUInt32LE(8),
  };
}

export function u32Key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

// -------------------------------------------------------------- conntrack

/** Conntrack key as the program builds it: scope = direction of the hook that admitted it. */
export function ctKey(
  saddr: string,
  daddr: string,
  sport: number,
  dport: number,
  protocol: number,
  scope: DirectionName,
): Buffer {
  const b = Buffer.alloc(SIZE.ctKey);
  addr16(saddr).copy(b, 0);
  addr16(daddr).copy(b, 16);
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(dport, 34);
  b[36] = protocol;
  b[37] = DIR[scope];
  return b;
}

export interface CtValue {
  readonly lastSeenNs: bigint;
  readonly packets: bigint;
  readonly bytes: bigint;
  readonly revision: number;
  readonly cookie: number;
  readonly flags: number;
  /** interface whose ready endpoint last checked the entry (0 = none yet) */
  readonly ifindex: number;
}

export function decodeCtValue(b: Uint8Array): CtValue {
  const x = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    lastSeenNs: x.readBigUInt64LE(0),
    packets: x.readBigUInt64LE(8),
    bytes: x.readBigUInt64LE(16),
    revision: x.readUInt32LE(24),
    cookie: x.readUInt32LE(28),
    flags: x.readUInt32LE(32),
    ifindex: x.readUInt32LE(36),
  };
}

// --------------------------------------------------------------- counters

export interface Counter {
  readonly packets: bigint;
  readonly bytes: bigint;
}

/** Sums a per-CPU {packets, bytes} pair (pal_rule_counter / pal_stat). */
export function sumCounters(perCpu: readonly Uint8Array[] | null): Counter {
  let packets = 0n;
  let bytes = 0n;
  for (const v of perCpu ?? []) {
    const x = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    packets += x.readBigUInt64LE(0);
    bytes += x.readBigUInt64LE(8);
  }
  return { packets, bytes };
}
