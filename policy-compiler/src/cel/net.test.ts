import { describe, expect, it } from 'vitest';
import { canonicalCidr, canonicalIp } from './net.js';

describe('canonical IP text (IPv4 dotted quad, IPv6 RFC 5952)', () => {
  it.each([
    ['10.1.2.3', '10.1.2.3'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'],
    ['::', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:db8:1:1:1:1:1:0', '2001:db8:1:1:1:1:1:0'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['fe80::1%eth0', null],
    ['01.2.3.4', null],
    ['256.0.0.1', null],
  ])('%s → %s', (input, want) => {
    expect(canonicalIp(input)).toBe(want);
  });
  it.each([
    ['10.0.0.1/8', '10.0.0.0/8'],
    ['FD00:10::/56', 'fd00:10::/56'],
    ['2001:db8::1/64', '2001:db8::/64'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['10.0.0.0/33', null],
    ['10.0.0.0/08', null],
    ['10.0.0.0', null],
  ])('CIDR %s → %s', (input, want) => {
    expect(canonicalCidr(input)).toBe(want);
  });
});
