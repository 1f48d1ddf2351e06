import { describe, expect, it } from 'vitest';
import {
  decodeEvent,
  ipv6Text,
  icmpTypeCode,
  PAL_EVENT_SIZE,
} from '../../enforcer/src/flows/event-decode.js';
import { buildEvent } from './event-builder.js';

describe('struct pal_event decoding', () => {
  it('reads every field at its C offset', () => {
    const r = decodeEvent(
      buildEvent({
        tsNs: 123456789012345n,
        type: 2,
        direction: 1,
        verdict: 1,
        staged: 1,
        protocol: 17,
        dropReason: 0,
        tcpFlags: 0x12,
        ifindex: 0x01020304,
        srcIdentity: 300,
        dstIdentity: 301,
        cookie: 0xdeadbeef,
        stagedCookie: 42,
        revision: 9,
        saddr: '192.168.1.10',
        daddr: '10.1.2.3',
        sport: 5353,
        dport: 53,
        pktLen: 1500,
        suppressed: 17,
      }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const e = r.event;
    expect(e.tsNs).toBe(123456789012345n);
    expect(e.type).toBe('NEW_ALLOWED');
    expect(e.direction).toBe('INGRESS');
    expect(e.verdict).toBe('ALLOW');
    expect(e.stagedVerdict).toBe('DENY');
    expect(e.protocol).toBe(17);
    expect(e.tcpFlags).toBe(0x12);
    expect(e.ipVersion).toBe(4);
    expect(e.ifindex).toBe(0x01020304);
    expect([e.srcIdentity, e.dstIdentity, e.cookie, e.stagedCookie, e.revision]).toEqual([
      300, 301, 0xdeadbeef, 42, 9,
    ]);
    expect([e.saddr, e.daddr, e.sport, e.dport]).toEqual(['192.168.1.10', '10.1.2.3', 5353, 53]);
    expect(e.pktLen).toBe(1500);
    expect(e.suppressedBefore).toBe(17);
  });

  it('decodes IPv6 and drop reasons', () => {
    const r = decodeEvent(
      buildEvent({ saddr: 'fd00:1::5', daddr: '2001:db8::1:0:0:1', dropReason: 1 }),
    );
    expect(r.ok && [r.event.saddr, r.event.daddr, r.event.ipVersion, r.event.dropReason]).toEqual([
      'fd00:1::5',
      '2001:db8::1:0:0:1',
      6,
      'POLICY_DENY',
    ]);
  });

  it('accepts IPv4 in the first four bytes as well as IPv4-mapped', () => {
    const b = buildEvent({ saddr: '10.9.8.7' });
    b.fill(0, 40, 56);
    Buffer.from([10, 9, 8, 7]).copy(b, 40);
    const r = decodeEvent(b);
    expect(r.ok && r.event.saddr).toBe('10.9.8.7');
  });

  it('decodes from a view with an offset (ringbuf slices)', () => {
    const big = Buffer.alloc(PAL_EVENT_SIZE + 13);
    buildEvent({ cookie: 77 }).copy(big, 13);
    const r = decodeEvent(big.subarray(13));
    expect(r.ok && r.event.cookie).toBe(77);
  });

  it('rejects short buffers and unknown enum values with a message', () => {
    expect(decodeEvent(Buffer.alloc(10))).toEqual({
      ok: false,
      error: 'pal_event: 10 bytes, need 88',
    });
    const bad = buildEvent();
    bad[8] = 99;
    expect(decodeEvent(bad)).toMatchObject({ ok: false, error: 'pal_event: unknown type 99' });
    const badv = buildEvent();
    badv[15] = 5;
    expect(decodeEvent(badv).ok).toBe(false);
  });

  it('formats IPv6 per RFC 5952 and ICMP type/code', () => {
    expect(ipv6Text(new Uint8Array(16))).toBe('::');
    const one = new Uint8Array(16);
    one[15] = 1;
    expect(ipv6Text(one)).toBe('::1');
    expect(icmpTypeCode({ sport: (8 << 8) | 0 })).toEqual({ type: 8, code: 0 });
  });
});
