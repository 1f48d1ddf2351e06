import { describe, expect, it } from 'vitest';
import { cidrContains, parseCidr, parseIp } from './ip.js';

describe('IP addresses', () => {
  it.each([
    ['::', '::0'],
    ['::1', '0:0:0:0:0:0:0:1'],
    ['fd00::1:1', 'fd00:0:0:0:0:0:1:1'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
    ['2001:db8::', '2001:0db8:0000:0000:0000:0000:0000:0000'],
  ])('%s and %s are the same IPv6 address', (a, b) => {
    expect(parseIp(a).key).toBe(parseIp(b).key);
    expect(parseIp(a).family).toBe(6);
  });
  it('keeps IPv4 and IPv4-mapped IPv6 apart (different families)', () => {
    expect(parseIp('10.0.0.1').key).not.toBe(parseIp('::ffff:10.0.0.1').key);
  });
  it('rejects what is not an address', () => {
    expect(() => parseIp('10.0.0')).toThrow(
      'not an IP address: "10.0.0" (allowed: IPv4 or IPv6 address)',
    );
    expect(() => parseIp('fd00::1::2')).toThrow(/not an IP address/);
  });
});

describe('CIDRs', () => {
  const inside = (c: string, ip: string): boolean => cidrContains(parseCidr(c), parseIp(ip));
  it('contain the addresses of their prefix only', () => {
    expect(inside('10.0.0.0/8', '10.255.255.255')).toBe(true);
    expect(inside('10.0.0.0/8', '11.0.0.0')).toBe(false);
    expect(inside('192.168.0.1/32', '192.168.0.1')).toBe(true);
    expect(inside('192.168.0.1/32', '192.168.0.2')).toBe(false);
    expect(inside('fd00::/64', 'fd00::ffff:1')).toBe(true);
    expect(inside('fd00::/64', 'fd00:0:0:1::1')).toBe(false);
    expect(inside('fd00::1/128', 'fd00::1')).toBe(true);
  });
  it('/0 contains every address of its family and none of the other', () => {
    expect(inside('0.0.0.0/0', '255.255.255.255')).toBe(true);
    expect(inside('0.0.0.0/0', '::1')).toBe(false);
    expect(inside('::/0', 'fd00::1')).toBe(true);
    expect(inside('::/0', '10.0.0.1')).toBe(false);
  });
  it('ignore host bits (as the e2e "except" tests write <podIP>/4)', () => {
    expect(inside('10.0.1.1/4', '1.2.3.4')).toBe(true);
    expect(inside('10.0.1.1/4', '16.0.0.1')).toBe(false);
  });
  it('reject malformed prefixes', () => {
    expect(() => parseCidr('10.0.0.0')).toThrow(
      'not a CIDR: "10.0.0.0" (allowed: <IPv4 or IPv6 address>/<prefix length>)',
    );
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/not a CIDR/);
    expect(() => parseCidr('fd00::/129')).toThrow(/not a CIDR/);
    expect(() => parseCidr('x/8')).toThrow(/not a CIDR/);
  });
});
