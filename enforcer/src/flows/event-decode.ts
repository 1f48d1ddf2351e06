/**
 * Decodes one `struct pal_event` (bpf/include/palisade.h) as the ringbuf
 * delivers it. Offsets are written out once, here, and pinned against the C
 * layout by the layout test; fields are host byte order except the `_be` ports.
 */
import { endianness } from 'node:os';

/** sizeof(struct pal_event): 8 + 8×u8 + 6×u32 + 2×16 bytes + 2×u16 + 3×u32. */
export const PAL_EVENT_SIZE = 88;

/** Byte offset of every field of struct pal_event. */
export const PAL_EVENT_OFFSETS = Object.freeze({
  ts_ns: 0,
  type: 8,
  direction: 9,
  verdict: 10,
  staged_verdict: 11,
  protocol: 12,
  drop_reason: 13,
  tcp_flags: 14,
  ip_version: 15,
  ifindex: 16,
  src_identity: 20,
  dst_identity: 24,
  cookie: 28,
  staged_cookie: 32,
  revision: 36,
  saddr: 40,
  daddr: 56,
  sport_be: 72,
  dport_be: 74,
  pkt_len: 76,
  suppressed_before: 80,
  pad: 84,
});

export const PAL_EVENT_TYPE = { DENY: 1, NEW_ALLOWED: 2, AUDIT: 3, REVOKED: 4 } as const;
export type PalEventType = 'DENY' | 'NEW_ALLOWED' | 'AUDIT' | 'REVOKED';
export type PalDirection = 'EGRESS' | 'INGRESS';
export type PalVerdict = 'DENY' | 'ALLOW';
export type PalStaged = 'NONE' | 'DENY' | 'ALLOW';

/** enum pal_drop_reason, in value order. */
export const DROP_REASONS = [
  'POLICY_DENIED',
  'POLICY_DENY',
  'NO_ENDPOINT_POLICY',
  'UNENCRYPTED',
  'PARSE',
  'FRAG_UNKNOWN',
  'REVOKED',
] as const;
export type DropReason = (typeof DROP_REASONS)[number] | 'UNKNOWN';

export interface PalEvent {
  /** bpf_ktime_get_ns() (CLOCK_MONOTONIC); see monotonicToWallNs. */
  readonly tsNs: bigint;
  readonly type: PalEventType;
  readonly direction: PalDirection;
  readonly verdict: PalVerdict;
  readonly stagedVerdict: PalStaged;
  /** IP protocol number (6 TCP, 17 UDP, 132 SCTP, 1 ICMP, 58 ICMPv6). */
  readonly protocol: number;
  readonly dropReason: DropReason;
  readonly tcpFlags: number;
  readonly ipVersion: 4 | 6;
  readonly ifindex: number;
  readonly srcIdentity: number;
  readonly dstIdentity: number;
  readonly cookie: number;
  readonly stagedCookie: number;
  readonly revision: number;
  /** Canonical text form (IPv4 dotted quad for ip_version 4). */
  readonly saddr: string;
  readonly daddr: string;
  /** Host-order ports; for ICMP sport holds the type/code bytes, see icmpTypeCode. */
  readonly sport: number;
  readonly dport: number;
  readonly pktLen: number;
  readonly suppressedBefore: number;
  /**
   * The undecoded bytes, for deterministic record ids: a view of the input
   * (no copy: ringbuf samples are fresh buffers, and a copy of 88 bytes is an
   * off-heap allocation per event). A caller that reuses its buffer for the
   * next event turns the event into a record first (EventIngest does).
   */
  readonly raw: Uint8Array;
}

export type DecodeResult = { ok: true; event: PalEvent } | { ok: false; error: string };

const EVENT_TYPES: Record<number, PalEventType> = {
  1: 'DENY',
  2: 'NEW_ALLOWED',
  3: 'AUDIT',
  4: 'REVOKED',
};
const STAGED: Record<number, PalStaged> = { 0: 'NONE', 1: 'DENY', 2: 'ALLOW' };

/**
 * IPv4 events may carry the address IPv4-mapped (::ffff:a.b.c.d) or in the
 * first 4 bytes. `at` is the address's offset in the event (no subarray: hot).
 */
function ipv4Text(b: Buffer, at: number): string {
  let mapped = b[at + 10] === 0xff && b[at + 11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) mapped = b[at + i] === 0;
  const o = at + (mapped ? 12 : 0);
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** RFC 5952 text of a 16-byte IPv6 address (longest zero run compressed). */
export function ipv6Text(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] as number) << 8) | (b[i + 1] as number));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

/**
 * Decodes one event. `littleEndian` defaults to this host's byte order (the
 * BPF program writes host order). Bad input is an error value, never a throw.
 */
export function decodeEvent(
  data: Uint8Array,
  littleEndian: boolean = endianness() === 'LE',
): DecodeResult {
  if (data.byteLength < PAL_EVENT_SIZE) {
    return {
      ok: false,
      error: `pal_event: ${data.byteLength} bytes, need ${PAL_EVENT_SIZE}`,
    };
  }
  // ringbuf samples are Buffers already; a view is made only for other arrays
  const b = Buffer.isBuffer(data)
    ? data
    : Buffer.from(data.buffer, data.byteOffset, PAL_EVENT_SIZE);
  const O = PAL_EVENT_OFFSETS;
  const u32 = (o: number): number => (littleEndian ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const type = EVENT_TYPES[b[O.type] as number];
  if (!type) return { ok: false, error: `pal_event: unknown type ${b[O.type]}` };
  const dir = b[O.direction];
  if (dir !== 0 && dir !== 1) return { ok: false, error: `pal_event: unknown direction ${dir}` };
  const ver = b[O.ip_version];
  if (ver !== 4 && ver !== 6) return { ok: false, error: `pal_event: ip_version ${ver}` };
  const staged = STAGED[b[O.staged_verdict] as number];
  if (!staged) return { ok: false, error: `pal_event: staged_verdict ${b[O.staged_verdict]}` };
  const reason = b[O.drop_reason] as number;
  return {
    ok: true,
    event: {
      tsNs: littleEndian ? b.readBigUInt64LE(O.ts_ns) : b.readBigUInt64BE(O.ts_ns),
      type,
      direction: dir === 0 ? 'EGRESS' : 'INGRESS',
      verdict: b[O.verdict] === 1 ? 'ALLOW' : 'DENY',
      stagedVerdict: staged,
      protocol: b[O.protocol] as number,
      dropReason: DROP_REASONS[reason] ?? 'UNKNOWN',
      tcpFlags: b[O.tcp_flags] as number,
      ipVersion: ver,
      ifindex: u32(O.ifindex),
      srcIdentity: u32(O.src_identity),
      dstIdentity: u32(O.dst_identity),
      cookie: u32(O.cookie),
      stagedCookie: u32(O.staged_cookie),
      revision: u32(O.revision),
      saddr: ver === 4 ? ipv4Text(b, O.saddr) : ipv6Text(b.subarray(O.saddr, O.saddr + 16)),
      daddr: ver === 4 ? ipv4Text(b, O.daddr) : ipv6Text(b.subarray(O.daddr, O.daddr + 16)),
      sport: b.readUInt16BE(O.sport_be),
      dport: b.readUInt16BE(O.dport_be),
      pktLen: u32(O.pkt_len),
      suppressedBefore: u32(O.suppressed_before),
      raw: b.byteLength === PAL_EVENT_SIZE ? b : b.subarray(0, PAL_EVENT_SIZE),
    },
  };
}

/** ICMP events: the first two L4 header bytes (type, code) sit where sport_be is. */
export function icmpTypeCode(ev: Pick<PalEvent, 'sport'>): { type: number; code: number } {
  return { type: ev.sport >> 8, code: ev.sport & 0xff };
}

/**
 * Offset to add to a CLOCK_MONOTONIC timestamp (bpf_ktime_get_ns) to get Unix
 * ns. process.hrtime is CLOCK_MONOTONIC on Linux, the same clock.
 */
export function monotonicToWallOffsetNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
}
