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
  endpointValue: 16,
  ipcacheKey: 20,
  ipcacheValue: 8,
  policyKey: 12,
  policyValue: 16,
  ctKey: 40,
  ctValue: 40,
  config: 16,
  ruleCounter: 16,
  stat: 16,
  event: 88,
} as const;

export const EP_F_POLICY_READY = 1;
export const EP_F_HOST_NETWORK = 2;
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
}

export function endpointValue(v: EndpointValue): Buffer {
  const b = Buffer.alloc(SIZE.endpointValue);
  b.writeUInt32LE(v.identity, 0);
  b.writeUInt32LE(v.egressTable, 4);
  b.writeUInt32LE(v.ingressTable, 8);
  b.writeUInt32LE(v.flags, 12);
  return b;
}

export function decodeEndpointValue(b: Uint8Array): EndpointValue {
  const x = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    identity: x.readUInt32LE(0),
    egressTable: x.readUInt32LE(4),
    ingressTable: x.readUInt32LE(8),
    flags: x.readUInt32LE(12),
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

export function ipcacheValue(identity: number, flags = 0): Buffer {
  const b = Buffer.alloc(SIZE.ipcacheValue);
  b.writeUInt32LE(identity, 0);
  b.writeUInt32LE(flags, 4);
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
  b.writeUInt16BE(k.port ?? 0, 10);
  return b;
}

/**
 * The compiler writes logical prefixes (palisade.h: 40 + k for k port bits);
 * the trie also compares the pad byte between protocol and port, so stored
 * prefixes above 40 are 8 bits longer (PAL_POLICY_TRIE_PAD_BITS).
 */
export function toTriePolicyKey(logical: Uint8Array): Buffer {
  const b = Buffer.from(logical);
  const plen = b.readUInt32LE(0);
  if (plen > 40) b.writeUInt32LE(plen + 8, 0);
  b[9] = 0;
  return b;
}

export function fromTriePolicyKey(stored: Uint8Array): Buffer {
  const b = Buffer.from(stored);
  const plen = b.readUInt32LE(0);
  if (plen > 48) b.writeUInt32LE(plen - 8, 0);
  return b;
}

export interface PolicyValue {
  readonly verdict: 0 | 1;
  readonly staged?: 0 | 1 | 2;
  readonly flags?: number;
  readonly precedence: number;
  readonly cookie: number;
  readonly stagedCookie?: number;
}

export function policyValue(v: PolicyValue): Buffer {
  const b = Buffer.alloc(SIZE.policyValue);
  b[0] = v.verdict;
  b[1] = v.staged ?? 0;
  b[2] = v.flags ?? 0;
  b.writeUInt32LE(v.precedence, 4);
  b.writeUInt32LE(v.cookie, 8);
  b.writeUInt32LE(v.stagedCookie ?? 0, 12);
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
