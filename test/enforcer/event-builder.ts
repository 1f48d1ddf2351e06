/** Builds struct pal_event bytes field by field, the way the C layout puts them (little endian host). */
import { isIPv4 } from 'node:net';

export interface EventFields {
  tsNs?: bigint;
  type?: number;
  direction?: number;
  verdict?: number;
  staged?: number;
  protocol?: number;
  dropReason?: number;
  tcpFlags?: number;
  ifindex?: number;
  srcIdentity?: number;
  dstIdentity?: number;
  cookie?: number;
  stagedCookie?: number;
  revision?: number;
  saddr?: string;
  daddr?: string;
  sport?: number;
  dport?: number;
  pktLen?: number;
  suppressed?: number;
}

function addrBytes(ip: string): Buffer {
  const out = Buffer.alloc(16);
  if (isIPv4(ip)) {
    out[10] = 0xff;
    out[11] = 0xff;
    ip.split('.').forEach((p, i) => (out[12 + i] = Number(p)));
    return out;
  }
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g as string, 16), i * 2));
  return out;
}

export function buildEvent(f: EventFields = {}): Buffer {
  const b = Buffer.alloc(88);
  const saddr = f.saddr ?? '10.0.0.1';
  const v6 = !isIPv4(saddr);
  b.writeBigUInt64LE(f.tsNs ?? 1_000_000_000n, 0);
  b[8] = f.type ?? 1;
  b[9] = f.direction ?? 0;
  b[10] = f.verdict ?? 0;
  b[11] = f.staged ?? 0;
  b[12] = f.protocol ?? 6;
  b[13] = f.dropReason ?? 0;
  b[14] = f.tcpFlags ?? 0x02;
  b[15] = v6 ? 6 : 4;
  b.writeUInt32LE(f.ifindex ?? 7, 16);
  b.writeUInt32LE(f.srcIdentity ?? 256, 20);
  b.writeUInt32LE(f.dstIdentity ?? 257, 24);
  b.writeUInt32LE(f.cookie ?? 0, 28);
  b.writeUInt32LE(f.stagedCookie ?? 0, 32);
  b.writeUInt32LE(f.revision ?? 1, 36);
  addrBytes(saddr).copy(b, 40);
  addrBytes(f.daddr ?? (v6 ? 'fd00::2' : '10.0.0.2')).copy(b, 56);
  b.writeUInt16BE(f.sport ?? 40000, 72);
  b.writeUInt16BE(f.dport ?? 80, 74);
  b.writeUInt32LE(f.pktLen ?? 60, 76);
  b.writeUInt32LE(f.suppressed ?? 0, 80);
  return b;
}
