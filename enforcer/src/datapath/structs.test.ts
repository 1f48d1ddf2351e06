import { describe, expect, it } from 'vitest';

import { fragment, frame, frameWithExtensions } from './packets.js';
import { IPPROTO, addr16, ctKey, ipcacheKey, policyKey, policyValue, ACTION } from './structs.js';
import { encodePolicyKey, decodePolicyValue } from '../../../policy-compiler/src/encode/codec.js';

describe('datapath struct codecs', () => {
  it('addresses are 16 bytes, IPv4 IPv4-mapped, IPv6 with :: expanded', () => {
    expect(addr16('10.1.2.3').toString('hex')).toBe('00000000000000000000ffff0a010203');
    expect(addr16('fd00::1').toString('hex')).toBe('fd000000000000000000000000000001');
    expect(addr16('::').toString('hex')).toBe('0'.repeat(32));
    expect(addr16('2001:db8:0:0:1:0:0:1').toString('hex')).toBe('20010db8000000000001000000000001');
    expect(() => addr16('10.1.2')).toThrow(/not an IP address/);
  });

  it('ipcache prefixes of IPv4 count from bit 96', () => {
    expect(ipcacheKey('10.0.0.0', 8).readUInt32LE(0)).toBe(104);
    expect(ipcacheKey('fd00::', 64).readUInt32LE(0)).toBe(64);
    expect(ipcacheKey('10.0.0.1').readUInt32LE(0)).toBe(128);
  });

  it('policy keys: contiguous prefix (identity, protocol, port) with the pad byte last, as the compiler encodes them', () => {
    const cases = [
      [{ identity: 5 }, 32, 0, 0],
      [{ identity: 5, protocol: 6 }, 40, 6, 0],
      [{ identity: 5, protocol: 6, port: 80 }, 56, 6, 80],
      [{ identity: 5, protocol: 17, port: 8000, portBits: 13 }, 53, 17, 8000],
    ] as const;
    for (const [spec, prefixlen, protocol, port] of cases) {
      const k = policyKey(spec);
      expect(k.readUInt32LE(0)).toBe(prefixlen);
      expect(k[8]).toBe(protocol);
      expect(k.readUInt16BE(9)).toBe(port);
      expect(k[11]).toBe(0);
      expect(Buffer.from(encodePolicyKey({ prefixlen, identity: 5, protocol, port }))).toEqual(k);
    }
    expect(policyKey({ identity: 0x01020304 }).subarray(4, 8).toString('hex')).toBe('01020304');
  });

  it('policy values: three enforced then three staged tier matches; staged defaults to enforced', () => {
    const v = policyValue({
      admin: { rank: 2, cookie: 7, action: ACTION.PASS },
      networkPolicy: { rank: 3, cookie: 9, action: ACTION.ALLOW, flags: 1 },
    });
    const d = decodePolicyValue(v);
    expect(d.enforced).toEqual([
      { rank: 2, cookie: 7, action: ACTION.PASS, flags: 0 },
      { rank: 3, cookie: 9, action: ACTION.ALLOW, flags: 1 },
      { rank: 0, cookie: 0, action: 0, flags: 0 },
    ]);
    expect(d.staged).toEqual(d.enforced);
  });

  it('conntrack keys carry ports big endian and the scope in the first pad byte', () => {
    const k = ctKey('10.0.0.1', '10.0.0.2', 1234, 80, IPPROTO.TCP, 'ingress');
    expect(k.length).toBe(40);
    expect(k.readUInt16BE(32)).toBe(1234);
    expect(k.readUInt16BE(34)).toBe(80);
    expect([k[36], k[37]]).toEqual([6, 1]);
  });

  it('crafted frames have the lengths their headers claim', () => {
    const v4 = frame({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      protocol: IPPROTO.TCP,
      sport: 1,
      dport: 2,
    });
    expect(v4.length).toBe(14 + 20 + 20);
    expect(v4.readUInt16BE(14 + 2)).toBe(40);
    const v6 = frame({ src: 'fd00::1', dst: 'fd00::2', protocol: IPPROTO.UDP, sport: 1, dport: 2 });
    expect(v6.length).toBe(14 + 40 + 8);
    expect(v6.readUInt16BE(14 + 4)).toBe(8);
    const ext = frameWithExtensions(
      { src: 'fd00::1', dst: 'fd00::2', protocol: IPPROTO.UDP, sport: 1, dport: 2 },
      [0, 60],
    );
    expect(ext[14 + 6]).toBe(0);
    expect(ext[14 + 40]).toBe(60);
    expect(ext[14 + 48]).toBe(IPPROTO.UDP);
    const f = fragment(
      { src: '10.0.0.1', dst: '10.0.0.2', protocol: IPPROTO.UDP, sport: 1, dport: 2 },
      9,
      1,
      false,
    );
    expect(f.readUInt16BE(14 + 6) & 0x1fff).toBe(2);
  });
});
