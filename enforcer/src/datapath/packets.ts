/**
 * Crafted Ethernet frames for BPF_PROG_TEST_RUN: the first packet of a
 * connection (TCP SYN, UDP, SCTP INIT, ICMP echo) over IPv4 or IPv6, and
 * IP fragments. Checksums are left zero: the programs never verify them.
 */
import { isIPv4 } from 'node:net';

import { IPPROTO, addr16 } from './structs.js';

export interface FrameSpec {
  readonly src: string;
  readonly dst: string;
  /** IP protocol number */
  readonly protocol: number;
  readonly sport: number;
  readonly dport: number;
  /** TCP flags byte (default SYN) */
  readonly tcpFlags?: number;
  /** bytes of payload after the L4 header */
  readonly payload?: number;
}

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;

function ethernet(etherType: number): Buffer {
  const b = Buffer.alloc(14);
  Buffer.from([0x02, 0, 0, 0, 0, 2]).copy(b, 0);
  Buffer.from([0x02, 0, 0, 0, 0, 1]).copy(b, 6);
  b.writeUInt16BE(etherType, 12);
  return b;
}

/** L4 header (plus payload) of the first packet of a connection. */
export function l4Header(spec: FrameSpec): Buffer {
  const payload = Buffer.alloc(spec.payload ?? 0);
  switch (spec.protocol) {
    case IPPROTO.TCP: {
      const h = Buffer.alloc(20);
      h.writeUInt16BE(spec.sport, 0);
      h.writeUInt16BE(spec.dport, 2);
      h.writeUInt32BE(1, 4);
      h[12] = 5 << 4;
      h[13] = spec.tcpFlags ?? 0x02;
      h.writeUInt16BE(65535, 14);
      return Buffer.concat([h, payload]);
    }
    case IPPROTO.UDP: {
      const h = Buffer.alloc(8);
      h.writeUInt16BE(spec.sport, 0);
      h.writeUInt16BE(spec.dport, 2);
      h.writeUInt16BE(8 + payload.length, 4);
      return Buffer.concat([h, payload]);
    }
    case IPPROTO.SCTP: {
      // common header + INIT chunk header
      const h = Buffer.alloc(12 + 20);
      h.writeUInt16BE(spec.sport, 0);
      h.writeUInt16BE(spec.dport, 2);
      h[12] = 1; // INIT
      h.writeUInt16BE(20, 14);
      return Buffer.concat([h, payload]);
    }
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6: {
      const h = Buffer.alloc(8);
      h[0] = spec.protocol === IPPROTO.ICMP ? 8 : 128; // echo request
      h.writeUInt16BE(spec.sport, 4); // identifier
      h.writeUInt16BE(1, 6);
      return Buffer.concat([h, payload]);
    }
    default:
      return payload;
  }
}

function ipv4Header(
  src: string,
  dst: string,
  protocol: number,
  len: number,
  id: number,
  fragOff: number,
): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + len, 2);
  h.writeUInt16BE(id, 4);
  h.writeUInt16BE(fragOff, 6);
  h[8] = 64;
  h[9] = protocol;
  addr16(src).copy(h, 12, 12, 16);
  addr16(dst).copy(h, 16, 12, 16);
  return h;
}

function ipv6Header(src: string, dst: string, nextHeader: number, len: number): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(len, 4);
  h[6] = nextHeader;
  h[7] = 64;
  addr16(src).copy(h, 8);
  addr16(dst).copy(h, 24);
  return h;
}

/** One unfragmented frame. */
export function frame(spec: FrameSpec): Buffer {
  const l4 = l4Header(spec);
  if (isIPv4(spec.src)) {
    return Buffer.concat([
      ethernet(ETH_P_IP),
      ipv4Header(spec.src, spec.dst, spec.protocol, l4.length, 1, 0),
      l4,
    ]);
  }
  return Buffer.concat([
    ethernet(ETH_P_IPV6),
    ipv6Header(spec.src, spec.dst, spec.protocol, l4.length),
    l4,
  ]);
}

/**
 * IPv6 frame whose L4 header sits behind the given extension headers
 * (each 8 bytes: hop-by-hop 0, routing 43, destination options 60).
 */
export function frameWithExtensions(spec: FrameSpec, extensions: readonly number[]): Buffer {
  const l4 = l4Header(spec);
  const chain: Buffer[] = [];
  extensions.forEach((type, i) => {
    const h = Buffer.alloc(8);
    h[0] = extensions[i + 1] ?? spec.protocol;
    h[1] = 0; // (0 + 1) * 8 bytes
    if (type === 43) h[2] = 0; // routing type 0, segments left 0
    chain.push(h);
  });
  const ext = Buffer.concat(chain);
  return Buffer.concat([
    ethernet(ETH_P_IPV6),
    ipv6Header(spec.src, spec.dst, extensions[0] ?? spec.protocol, ext.length + l4.length),
    ext,
    l4,
  ]);
}

/**
 * Fragment `index` (0 = first) of a datagram: the first carries the L4
 * header, later ones 8-byte-aligned payload only.
 */
export function fragment(spec: FrameSpec, id: number, index: number, more: boolean): Buffer {
  const body = index === 0 ? l4Header({ ...spec, payload: 8 }) : Buffer.alloc(16);
  const offsetUnits = index === 0 ? 0 : 2 + (index - 1) * 2; // in 8-byte units
  if (isIPv4(spec.src)) {
    const fo = (more ? 0x2000 : 0) | offsetUnits;
    return Buffer.concat([
      ethernet(ETH_P_IP),
      ipv4Header(spec.src, spec.dst, spec.protocol, body.length, id, fo),
      body,
    ]);
  }
  const fh = Buffer.alloc(8);
  fh[0] = spec.protocol;
  fh.writeUInt16BE((offsetUnits << 3) | (more ? 1 : 0), 2);
  fh.writeUInt32BE(id >>> 0, 4);
  return Buffer.concat([
    ethernet(ETH_P_IPV6),
    ipv6Header(spec.src, spec.dst, 44, 8 + body.length),
    fh,
    body,
  ]);
}
