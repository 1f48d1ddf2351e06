/**
 * IP addresses and CIDR prefixes: strict parsing (like Go's net/netip, which
 * the Kubernetes CEL library uses) and canonical text (IPv4 dotted quad,
 * IPv6 RFC 5952: lowercase, longest zero run compressed).
 */
import { isIPv6 } from 'node:net';

export interface IpAddr {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
  /** ::ffff:a.b.c.d written as such. */
  readonly mapped: boolean;
}

export interface CidrPrefix {
  readonly ip: IpAddr;
  readonly prefixLength: number;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseV4(s: string): Uint8Array | null {
  const m = V4.exec(s);
  if (!m) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = m[i + 1] as string;
    if (part.length > 1 && part.startsWith('0')) return null; // no leading zeros (netip)
    const n = Number(part);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(s: string): { bytes: Uint8Array; mapped: boolean } | null {
  if (s.includes('%') || !isIPv6(s)) return null;
  let tail: Uint8Array | null = null;
  let text = s.toLowerCase();
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail = parseV4(text.slice(lastColon + 1));
    if (!tail) return null;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.includes('::') ? (text.split('::') as [string, string]) : [text, null];
  const h = head === '' ? [] : head.split(':');
  const r = rest === null || rest === '' ? [] : rest.split(':');
  const groups = rest === null ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
  if (groups.length !== 8) return null;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    bytes[2 * i] = n >> 8;
    bytes[2 * i + 1] = n & 0xff;
  });
  if (tail) bytes.set(tail, 12);
  const mapped =
    tail !== null &&
    bytes.slice(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff &&
    bytes[11] === 0xff;
  return { bytes, mapped };
}

export function parseIp(s: string): IpAddr | null {
  const v4 = parseV4(s);
  if (v4) return { family: 4, bytes: v4, mapped: false };
  const v6 = parseV6(s);
  return v6 ? { family: 6, bytes: v6.bytes, mapped: v6.mapped } : null;
}

export function parseCidr(s: string): CidrPrefix | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIp(s.slice(0, slash));
  const len = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(len) || (len.length > 1 && len.startsWith('0'))) return null;
  const n = Number(len);
  if (n > ip.bytes.length * 8) return null;
  return { ip, prefixLength: n };
}

export function formatIp(ip: IpAddr): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (ip.mapped) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] as number) << 8) | (b[i + 1] as number));
  // Longest run of two or more zero groups, first on a tie (RFC 5952 §4.2).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The prefix with host bits cleared. */
export function maskCidr(c: CidrPrefix): CidrPrefix {
  const bytes = new Uint8Array(c.ip.bytes);
  for (let bit = c.prefixLength; bit < bytes.length * 8; bit++) {
    bytes[bit >> 3] = (bytes[bit >> 3] as number) & ~(0x80 >> (bit & 7));
  }
  return { ip: { ...c.ip, bytes }, prefixLength: c.prefixLength };
}

export function formatCidr(c: CidrPrefix): string {
  return `${formatIp(c.ip)}/${c.prefixLength}`;
}

export function cidrContainsIp(c: CidrPrefix, ip: IpAddr): boolean {
  if (c.ip.bytes.length !== ip.bytes.length) return false;
  for (let bit = 0; bit < c.prefixLength; bit++) {
    const m = 0x80 >> (bit & 7);
    if (((c.ip.bytes[bit >> 3] as number) & m) !== ((ip.bytes[bit >> 3] as number) & m))
      return false;
  }
  return true;
}

export function cidrContainsCidr(outer: CidrPrefix, inner: CidrPrefix): boolean {
  return inner.prefixLength >= outer.prefixLength && cidrContainsIp(outer, inner.ip);
}

/** Canonical text of an IP, or null when it is not one. */
export function canonicalIp(s: string): string | null {
  const ip = parseIp(s);
  return ip ? formatIp(ip) : null;
}

/** Canonical (masked) text of a CIDR, or null when it is not one. */
export function canonicalCidr(s: string): string | null {
  const c = parseCidr(s);
  return c ? formatCidr(maskCidr(c)) : null;
}
