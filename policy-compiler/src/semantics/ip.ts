/**
 * IPv4/IPv6 addresses and CIDRs as numbers, for containment tests.
 * IPv4 uses plain numbers (fast path of big matrices), IPv6 uses bigint.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type IpAddr =
  | { readonly family: 4; readonly n: number; readonly key: string; readonly text: string }
  | { readonly family: 6; readonly n: bigint; readonly key: string; readonly text: string };

export type Cidr =
  | { readonly family: 4; readonly net: number; readonly mask: number; readonly text: string }
  | { readonly family: 6; readonly net: bigint; readonly mask: bigint; readonly text: string };

export class IpFormatError extends Error {
  override name = 'IpFormatError';
}

function parseV4(text: string): number {
  const parts = text.split('.');
  let n = 0;
  for (const p of parts) n = n * 256 + Number(p);
  return n;
}

function parseV6(text: string): bigint {
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - rest.length;
  const groups = [...head, ...Array<string>(halves.length > 1 ? missing : 0).fill('0'), ...rest];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16));
  return n;
}

/** Parses an IP address; throws IpFormatError naming what is allowed. */
export function parseIp(text: string): IpAddr {
  if (isIPv4(text)) {
    const n = parseV4(text);
    return { family: 4, n, key: `4:${n}`, text };
  }
  if (isIPv6(text)) {
    const n = parseV6(text);
    return { family: 6, n, key: `6:${n.toString(16)}`, text };
  }
  throw new IpFormatError(`not an IP address: "${text}" (allowed: IPv4 or IPv6 address)`);
}

const V6_ALL = (1n << 128n) - 1n;

/** Parses a CIDR ("10.0.0.0/8", "fd00::/8"); host bits are ignored (masked off). */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const fail = (): never => {
    throw new IpFormatError(
      `not a CIDR: "${text}" (allowed: <IPv4 or IPv6 address>/<prefix length>)`,
    );
  };
  if (slash < 0) return fail();
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return fail();
  const len = Number(lenText);
  let addr: IpAddr;
  try {
    addr = parseIp(addrText);
  } catch {
    return fail();
  }
  if (addr.family === 4) {
    if (len > 32) return fail();
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    return { family: 4, net: (addr.n & mask) >>> 0, mask, text };
  }
  if (len > 128) return fail();
  const mask = len === 0 ? 0n : (V6_ALL << BigInt(128 - len)) & V6_ALL;
  return { family: 6, net: addr.n & mask, mask, text };
}

export function cidrContains(c: Cidr, ip: IpAddr): boolean {
  if (c.family === 4) return ip.family === 4 && (ip.n & c.mask) >>> 0 === c.net;
  return ip.family === 6 && (ip.n & c.mask) === c.net;
}
