/** IPv4/IPv6 prefixes as integer ranges: parsing, canonical text, containment. */
import { isIPv4, isIPv6 } from 'node:net';

export interface Prefix {
  readonly family: 4 | 6;
  /** Network address as an integer (host bits zero). */
  readonly network: bigint;
  readonly length: number;
  /** Canonical text, e.g. 10.1.0.0/16, fd00:1::/64. */
  readonly text: string;
}

export class CidrError extends Error {
  override name = 'CidrError';
}

function v4ToBig(a: string): bigint {
  return a.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

function v6ToBig(a: string): bigint {
  let s = a;
  // Embedded IPv4 tail (::ffff:1.2.3.4).
  const m = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m) {
    const v = v4ToBig(m[1] as string);
    s =
      s.slice(0, -(m[1] as string).length) +
      `${(v >> 16n).toString(16)}:${(v & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g as string, 16)), 0n);
}

export function addressToBigint(addr: string): { family: 4 | 6; value: bigint } {
  if (isIPv4(addr)) return { family: 4, value: v4ToBig(addr) };
  if (isIPv6(addr)) return { family: 6, value: v6ToBig(addr) };
  throw new CidrError(`not an IP address: ${JSON.stringify(addr)}`);
}

export function bigintToAddress(family: 4 | 6, v: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
  const g: string[] = [];
  for (let i = 7; i >= 0; i--) g.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Longest run of zero groups (length >= 2) becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}

/** Parses `addr/len` (or a bare address as a host prefix). Host bits must be zero unless `allowHostBits`. */
export function parsePrefix(text: string, allowHostBits = false): Prefix {
  const [addr, lenText, extra] = text.trim().split('/');
  if (extra !== undefined || addr === undefined)
    throw new CidrError(`not a CIDR: ${JSON.stringify(text)}`);
  const { family, value } = addressToBigint(addr);
  const bits = family === 4 ? 32 : 128;
  const length = lenText === undefined ? bits : Number(lenText);
  if (!/^\d+$/.test(lenText ?? String(bits)) || length < 0 || length > bits) {
    throw new CidrError(`not a CIDR: ${JSON.stringify(text)} (prefix length must be 0-${bits})`);
  }
  const hostMask = (1n << BigInt(bits - length)) - 1n;
  if ((value & hostMask) !== 0n && !allowHostBits) {
    throw new CidrError(
      `CIDR ${text} has host bits set (network is ${bigintToAddress(family, value & ~hostMask)}/${length})`,
    );
  }
  const network = value & ~hostMask & ((1n << BigInt(bits)) - 1n);
  return { family, network, length, text: `${bigintToAddress(family, network)}/${length}` };
}

/** The last address of a prefix. */
function last(p: Prefix): bigint {
  const bits = p.family === 4 ? 32 : 128;
  return p.network + (1n << BigInt(bits - p.length)) - 1n;
}

/** Two prefixes overlap iff one contains the other; returns the smaller (the overlap) or null. */
export function prefixOverlap(a: Prefix, b: Prefix): Prefix | null {
  if (a.family !== b.family) return null;
  if (a.network <= last(b) && b.network <= last(a)) return a.length >= b.length ? a : b;
  return null;
}
