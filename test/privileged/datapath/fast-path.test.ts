/**
 * The established-connection fast path (bpf/src/palisade.bpf.c fast_path):
 * a conntrack entry checked at the current revision on this interface
 * passes without the endpoint lookup. These pin the cases where skipping
 * that lookup could differ from the full path: the endpoint made not ready
 * or removed, an entry stamped by another interface, headers the full
 * parse refuses, and the per-packet bookkeeping (entry and rule counters).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Datapath } from '../../../enforcer/src/datapath/datapath.js';
import { frame } from '../../../enforcer/src/datapath/packets.js';
import {
  EP_F_POLICY_READY,
  IPPROTO,
  ctKey,
  decodeCtValue,
} from '../../../enforcer/src/datapath/structs.js';
import { requirePrivileges } from '../../support/privileged.js';
import { ALLOW, ENDPOINT_FLAGS, endpoint, ipc, rule, table, tables } from './fixtures.js';

const LO = 1; // test_run device: loopback exists in every netns
const A = '10.2.0.1';
const B = '10.2.0.2';
const A6 = 'fd02::1';
const B6 = 'fd02::2';
const ID_A = 310;
const ID_B = 311;
const COOKIE = 9;

let dp: Datapath;

beforeAll(() => {
  requirePrivileges('root', 'bpffs');
  dp = Datapath.open({ pinDir: null, denyEventsPerSec: 0 });
});
afterAll(() => dp?.close());

/** A on lo may send UDP and TCP to B (cookie 9); `flags` / `present` shape A's endpoint. */
function load(flags = ENDPOINT_FLAGS, present = true): void {
  const allow = table(10, [
    rule(
      { identity: ID_B, protocol: IPPROTO.UDP },
      { verdict: ALLOW, precedence: 2, cookie: COOKIE },
    ),
    rule(
      { identity: ID_B, protocol: IPPROTO.TCP },
      { verdict: ALLOW, precedence: 1, cookie: COOKIE },
    ),
  ]);
  dp.applyFull(
    tables({
      ipcache: [ipc(A, ID_A), ipc(B, ID_B), ipc(A6, ID_A), ipc(B6, ID_B)],
      endpoints: present ? [endpoint('default/ns/a', ID_A, 10, 11, flags)] : [],
      tables: [allow, table(11, [])],
    }),
    (id) => (id === 'default/ns/a' ? LO : undefined),
  );
}

let port = 30000;
/** A new UDP flow A -> B (or v6), its entry created by a first packet. */
function flow(v6 = false): { pkt: Buffer; key: Buffer } {
  const [src, dst] = v6 ? [A6, B6] : [A, B];
  const sport = port++;
  const pkt = frame({ src, dst, protocol: IPPROTO.UDP, sport, dport: 53 });
  expect(dp.testRun('egress', pkt, { ifindex: LO }).allowed).toBe(true);
  return { pkt, key: ctKey(src, dst, sport, 53, IPPROTO.UDP, 'egress') };
}
const entry = (key: Buffer) => {
  const v = dp.map('conntrack').lookup(key);
  return v ? decodeCtValue(v) : null;
};

describe('established-connection fast path', () => {
  it('counts every packet once on the entry and on the rule, and stamps the interface', () => {
    load();
    for (const v6 of [false, true]) {
      const { pkt, key } = flow(v6);
      const first = entry(key)!;
      expect(first.ifindex).toBe(LO);
      expect(first.packets).toBe(1n);
      const rule0 = dp.ruleCounter(COOKIE);
      for (let i = 0; i < 3; i++)
        expect(dp.testRun('egress', pkt, { ifindex: LO }).allowed).toBe(true);
      const after = entry(key)!;
      expect(after.packets).toBe(4n);
      expect(after.bytes).toBe(first.bytes * 4n);
      expect(after.lastSeenNs).toBeGreaterThanOrEqual(first.lastSeenNs);
      const rule1 = dp.ruleCounter(COOKIE);
      expect(rule1.packets - rule0.packets).toBe(3n);
      expect(rule1.bytes - rule0.bytes).toBe(first.bytes * 3n);
    }
  });

  it('an endpoint made not ready, then removed, drops its established connections', () => {
    load();
    const { pkt } = flow();
    expect(dp.testRun('egress', pkt, { ifindex: LO }).allowed).toBe(true);
    load(ENDPOINT_FLAGS & ~EP_F_POLICY_READY);
    let before = dp.dropStats().NO_ENDPOINT_POLICY.packets;
    expect(dp.testRun('egress', pkt, { ifindex: LO }).allowed).toBe(false);
    expect(dp.dropStats().NO_ENDPOINT_POLICY.packets).toBe(before + 1n);
    load(ENDPOINT_FLAGS, false);
    before = dp.dropStats().NO_ENDPOINT_POLICY.packets;
    expect(dp.testRun('egress', pkt, { ifindex: LO }).allowed).toBe(false);
    expect(dp.dropStats().NO_ENDPOINT_POLICY.packets).toBe(before + 1n);
  });

  it('an entry stamped by another interface takes the full path: fail closed without an endpoint here', () => {
    load();
    const { pkt, key } = flow();
    const raw = Buffer.from(dp.map('conntrack').lookup(key)!);
    raw.writeUInt32LE(4242, 36); // as if another pod's interface had checked it
    dp.map('conntrack').update(key, raw);
    // endpoint ready on lo: passes as before and is stamped with lo
    expect(dp.testRun('egress', pkt, { ifindex: LO }).allowed).toBe(true);
    expect(entry(key)!.ifindex).toBe(LO);
    // no endpoint on lo (same revision as the entry after the stamp below)
    load(ENDPOINT_FLAGS, false);
    const cur = Buffer.from(dp.map('conntrack').lookup(key)!);
    cur.writeUInt32LE(dp.revision(), 24);
    cur.writeUInt32LE(4242, 36);
    dp.map('conntrack').update(key, cur);
    const before = dp.dropStats().NO_ENDPOINT_POLICY.packets;
    expect(dp.testRun('egress', pkt, { ifindex: LO }).allowed).toBe(false);
    expect(dp.dropStats().NO_ENDPOINT_POLICY.packets).toBe(before + 1n);
  });

  it('a TCP header too short for the full parse is dropped (PARSE) even on an established tuple', () => {
    load();
    const sport = port++;
    const syn = frame({ src: A, dst: B, protocol: IPPROTO.TCP, sport, dport: 80, tcpFlags: 0x02 });
    expect(dp.testRun('egress', syn, { ifindex: LO }).allowed).toBe(true);
    expect(entry(ctKey(A, B, sport, 80, IPPROTO.TCP, 'egress'))).not.toBeNull();
    const short = syn.subarray(0, 14 + 20 + 10); // ports, no flags byte
    const before = dp.dropStats().PARSE.packets;
    expect(dp.testRun('egress', short, { ifindex: LO }).allowed).toBe(false);
    expect(dp.dropStats().PARSE.packets).toBe(before + 1n);
  });
});
