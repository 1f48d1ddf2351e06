/**
 * Addresses and prefixes in the datapath's one address space: 128-bit
 * numbers where IPv4 a.b.c.d is ::ffff:a.b.c.d and an IPv4 /n is /96+n
 * (bpf/include/palisade.h, ipcache).
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Prefix {
  readonly family: 4 | 6;
  /** Network address in the 128-bit space, host bits zero. */
  readonly net: bigint;
  /** Prefix length in the 128-bit space (IPv4: 96 + n). */
  readonly len: number;
  /** Canonical text, e.g. `10.0.0.0/8`, `fd00::/8`. */
  readonly text: string;
}

export class AddressError extends Error {
  override name = 'AddressError';
}

const ALL = (1n << 128n) - 1n;
export const V4_MAPPED_BASE = 0xffffn << 32n;

function v4(text: string): bigint {
  let n = 0n;
  for (const p of text.split('.')) n = (n << 8n) | BigInt(Number(p));
  return n;
}

function v6(text: string): bigint {
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const x = v4(tail);
    s = `${s.slice(0, lastColon + 1)}${(x >> 16n).toString(16)}:${(x & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = [
    ...head,
    ...Array<string>(halves.length > 1 ? 8 - head.length - rest.length : 0).fill('0'),
    ...rest,
  ];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16));
  return n;
}

export const mask = (len: number): bigint => (len === 0 ? 0n : (ALL << BigInt(128 - len)) & ALL);

/** An address as a 128-bit number (IPv4-mapped for IPv4). Rejects IPv6 text inside the IPv4-mapped block. */
export function parseAddress(text: string): { family: 4 | 6; n: bigint } {
  if (isIPv4(text)) return { family: 4, n: V4_MAPPED_BASE | v4(text) };
  if (isIPv6(text)) {
    const n = v6(text);
    if ((n & mask(96)) === V4_MAPPED_BASE) {
      throw new AddressError(
        `IPv4-mapped IPv6 address "${text}" is not supported (write the IPv4 address)`,
      );
    }
    return { family: 6, n };
  }
  throw new AddressError(`not an IP address: "${text}" (allowed: IPv4 or IPv6 address)`);
}

/** A CIDR; host bits are masked off, as the reference evaluator does. */
export function parsePrefix(text: string): Prefix {
  const slash = text.indexOf('/');
  const bad = (why = ''): never => {
    throw new AddressError(
      `not a CIDR: "${text}"${why} (allowed: <IPv4 or IPv6 address>/<prefix length>)`,
    );
  };
  if (slash < 0) bad();
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) bad();
  const n = Number(lenText);
  if (isIPv4(addrText)) {
    if (n > 32) bad();
    const len = 96 + n;
    const net = (V4_MAPPED_BASE | v4(addrText)) & mask(len);
    return { family: 4, net, len, text: `${formatV4(net)}/${n}` };
  }
  if (!isIPv6(addrText)) bad();
  if (n > 128) bad();
  const net = v6(addrText) & mask(n);
  // Inside ::ffff:0:0/96 the shared trie cannot tell IPv6 from IPv4.
  if (n >= 96 && (net & mask(96)) === V4_MAPPED_BASE)
    bad(': IPv4-mapped IPv6 prefixes are not supported');
  return { family: 6, net, len: n, text: `${formatV6(net)}/${n}` };
}

export function prefixContains(p: Prefix, n: bigint, family: 4 | 6): boolean {
  return p.family === family && (n & mask(p.len)) === p.net;
}

/** Does the IPv6 prefix p contain the whole IPv4-mapped block (so the trie would give IPv4 addresses its identity)? */
export function coversV4Space(p: Prefix): boolean {
  return p.family === 6 && p.len <= 96 && (V4_MAPPED_BASE & mask(p.len)) === p.net;
}

export function addressBytes(n: bigint): Uint8Array {
  const b = new Uint8Array(16);
  let x = n;
  for (let i = 15; i >= 0; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}

export function bytesToAddress(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = 0; i < 16; i++) n = (n << 8n) | BigInt(b[i] as number);
  return n;
}

function formatV4(n: bigint): string {
  const x = Number(n & 0xffffffffn);
  return [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255].join('.');
}

function formatV6(n: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Longest run of zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
