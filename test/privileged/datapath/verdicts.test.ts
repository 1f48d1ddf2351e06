/**
 * The real programs under BPF_PROG_TEST_RUN on hand-made tables: allow,
 * deny, default deny, fail closed, precedence between the identity and ANY
 * lookups, port prefixes, conntrack replies, fragments, events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Datapath } from '../../../enforcer/src/datapath/datapath.js';
import { fragment, frame, frameWithExtensions } from '../../../enforcer/src/datapath/packets.js';
import {
  EP_F_EGRESS_AUDIT,
  ID_ANY,
  ID_WORLD,
  IPPROTO,
} from '../../../enforcer/src/datapath/structs.js';
import type { PalEvent } from '../../../enforcer/src/flows/event-decode.js';
import { requirePrivileges } from '../../support/privileged.js';
import {
  ALLOW,
  DENY,
  ENDPOINT_FLAGS,
  allowAll,
  endpoint,
  ipc,
  rule,
  table,
  tables,
} from './fixtures.js';

const LO = 1; // test_run device: loopback exists in every netns
const A = '10.1.0.1';
const B = '10.1.0.2';
const A6 = 'fd00::1';
const B6 = 'fd00::2';
const ID_A = 300;
const ID_B = 301;

let dp: Datapath;
const events: PalEvent[] = [];

beforeAll(() => {
  requirePrivileges('root', 'bpffs');
  dp = Datapath.open({ pinDir: null, denyEventsPerSec: 0 });
  dp.onEvent((e) => events.push(e));
});
afterAll(() => dp?.close());

/** Endpoint on lo = the pod whose hook runs; tables 10 (egress) / 11 (ingress). */
function load(
  egress: ReturnType<typeof table>,
  ingress: ReturnType<typeof table>,
  flags = ENDPOINT_FLAGS,
): void {
  dp.applyFull(
    tables({
      ipcache: [
        ipc(A, ID_A),
        ipc(B, ID_B),
        ipc(A6, ID_A),
        ipc(B6, ID_B),
        ipc('192.168.0.0', 400, 16),
      ],
      endpoints: [endpoint('default/ns/a', ID_A, egress.table, ingress.table, flags)],
      tables: [egress, ingress],
    }),
    (id) => (id === 'default/ns/a' ? LO : undefined),
  );
}

let sport = 20000;
const egress = (dst: string, protocol: number, dport: number, src = A): boolean =>
  dp.testRun('egress', frame({ src, dst, protocol, sport: sport++, dport }), { ifindex: LO })
    .allowed;
const ingress = (src: string, protocol: number, dport: number, dst = A): boolean =>
  dp.testRun('ingress', frame({ src, dst, protocol, sport: sport++, dport }), { ifindex: LO })
    .allowed;

describe('datapath verdicts (BPF_PROG_TEST_RUN)', () => {
  it('allows what an allow entry matches and denies the rest (default deny)', () => {
    load(
      table(10, [
        rule(
          { identity: ID_B, protocol: IPPROTO.TCP, port: 80 },
          { verdict: ALLOW, precedence: 10, cookie: 5 },
        ),
      ]),
      table(11, []),
    );
    expect(egress(B, IPPROTO.TCP, 80)).toBe(true);
    expect(egress(B, IPPROTO.TCP, 81)).toBe(false);
    expect(egress(B, IPPROTO.UDP, 80)).toBe(false);
    expect(egress('10.9.9.9', IPPROTO.TCP, 80)).toBe(false); // WORLD
    expect(ingress(B, IPPROTO.TCP, 80)).toBe(false); // empty ingress table
    expect(dp.ruleCounter(5).packets).toBeGreaterThanOrEqual(1n);
  });

  it('explicit deny entries drop with reason POLICY_DENY', () => {
    load(
      table(10, [
        rule(
          { identity: ID_B, protocol: IPPROTO.TCP },
          { verdict: DENY, precedence: 50, cookie: 7, flags: 8 },
        ),
        rule({ identity: ID_ANY }, { verdict: ALLOW, precedence: 1, cookie: 0 }),
      ]),
      allowAll(11),
    );
    const before = dp.dropStats().POLICY_DENY.packets;
    expect(egress(B, IPPROTO.TCP, 443)).toBe(false);
    expect(dp.dropStats().POLICY_DENY.packets).toBe(before + 1n);
    expect(egress(B, IPPROTO.UDP, 53)).toBe(true);
    expect(egress('10.9.9.9', IPPROTO.TCP, 443)).toBe(true);
  });

  it('precedence decides between the identity and the ANY lookup, both ways', () => {
    load(
      table(10, [
        rule(
          { identity: ID_B, protocol: IPPROTO.TCP, port: 80 },
          { verdict: ALLOW, precedence: 20, cookie: 1 },
        ),
        rule(
          { identity: ID_ANY, protocol: IPPROTO.TCP, port: 80 },
          { verdict: DENY, precedence: 30, cookie: 2 },
        ),
        rule(
          { identity: ID_B, protocol: IPPROTO.TCP, port: 81 },
          { verdict: DENY, precedence: 20, cookie: 3 },
        ),
        rule(
          { identity: ID_ANY, protocol: IPPROTO.TCP, port: 81 },
          { verdict: ALLOW, precedence: 10, cookie: 4 },
        ),
      ]),
      allowAll(11),
    );
    expect(egress(B, IPPROTO.TCP, 80)).toBe(false); // ANY deny outranks identity allow
    expect(egress(B, IPPROTO.TCP, 81)).toBe(false); // identity deny outranks ANY allow
    expect(egress('10.9.9.9', IPPROTO.TCP, 81)).toBe(true); // only ANY matches
  });

  it('port prefixes match ranges (8000-8007 as one /13 entry) and ipcache prefixes give identities', () => {
    load(
      table(10, [
        rule(
          { identity: 400, protocol: IPPROTO.UDP, port: 8000, portBits: 13 },
          { verdict: ALLOW, precedence: 5, cookie: 9 },
        ),
      ]),
      allowAll(11),
    );
    expect(egress('192.168.7.7', IPPROTO.UDP, 8000)).toBe(true);
    expect(egress('192.168.7.7', IPPROTO.UDP, 8007)).toBe(true);
    expect(egress('192.168.7.7', IPPROTO.UDP, 8008)).toBe(false);
    expect(egress('192.169.0.1', IPPROTO.UDP, 8000)).toBe(false);
  });

  it('fails closed: endpoint without POLICY_READY, endpoint missing, table missing', () => {
    load(allowAll(10), allowAll(11), 0);
    expect(egress(B, IPPROTO.TCP, 80)).toBe(false);
    expect(dp.dropStats().NO_ENDPOINT_POLICY.packets).toBeGreaterThan(0n);
    dp.applyFull(tables({ tables: [allowAll(10)] }), () => undefined); // no endpoint on lo
    expect(egress(B, IPPROTO.TCP, 80)).toBe(false);
    dp.applyFull(
      tables({ endpoints: [endpoint('default/ns/a', ID_A, 12, 13)], tables: [] }),
      () => LO,
    );
    expect(egress(B, IPPROTO.TCP, 80)).toBe(false);
    expect(ingress(B, IPPROTO.TCP, 80)).toBe(false);
  });

  it('IPv6 (with extension headers), SCTP and ICMP go through the same lookups', () => {
    load(
      table(10, [
        rule(
          { identity: ID_B, protocol: IPPROTO.SCTP, port: 9 },
          { verdict: ALLOW, precedence: 5, cookie: 1 },
        ),
        rule(
          { identity: ID_B, protocol: IPPROTO.TCP, port: 80 },
          { verdict: ALLOW, precedence: 5, cookie: 1 },
        ),
        rule(
          { identity: ID_B, protocol: IPPROTO.ICMPV6 },
          { verdict: ALLOW, precedence: 5, cookie: 1 },
        ),
      ]),
      table(11, []),
    );
    expect(egress(B6, IPPROTO.TCP, 80, A6)).toBe(true);
    expect(egress(B6, IPPROTO.TCP, 81, A6)).toBe(false);
    expect(egress(B, IPPROTO.SCTP, 9)).toBe(true);
    expect(egress(B, IPPROTO.SCTP, 10)).toBe(false);
    expect(egress(B6, IPPROTO.ICMPV6, 0, A6)).toBe(true);
    expect(egress(B, IPPROTO.ICMP, 0)).toBe(false);
    const ext = (dport: number) =>
      dp.testRun(
        'egress',
        frameWithExtensions(
          { src: A6, dst: B6, protocol: IPPROTO.TCP, sport: sport++, dport },
          [0, 60, 43],
        ),
        {
          ifindex: LO,
        },
      ).allowed;
    expect(ext(80)).toBe(true);
    expect(ext(81)).toBe(false);
  });

  it('replies of an allowed connection pass; the same packets unsolicited do not', () => {
    load(
      table(10, [
        rule(
          { identity: ID_B, protocol: IPPROTO.TCP, port: 80 },
          { verdict: ALLOW, precedence: 5, cookie: 1 },
        ),
      ]),
      table(11, []),
    );
    const out = frame({ src: A, dst: B, protocol: IPPROTO.TCP, sport: 40001, dport: 80 });
    const reply = frame({
      src: B,
      dst: A,
      protocol: IPPROTO.TCP,
      sport: 80,
      dport: 40001,
      tcpFlags: 0x12,
    });
    const stranger = frame({
      src: B,
      dst: A,
      protocol: IPPROTO.TCP,
      sport: 80,
      dport: 40002,
      tcpFlags: 0x12,
    });
    expect(dp.testRun('ingress', reply, { ifindex: LO }).allowed).toBe(false); // before the connection
    expect(dp.testRun('egress', out, { ifindex: LO }).allowed).toBe(true);
    expect(dp.testRun('ingress', reply, { ifindex: LO }).allowed).toBe(true);
    expect(dp.testRun('ingress', stranger, { ifindex: LO }).allowed).toBe(false);
    // an egress-scoped entry never admits the same tuple at an ingress check
    const sameTupleIn = frame({ src: A, dst: B, protocol: IPPROTO.TCP, sport: 40001, dport: 80 });
    expect(dp.testRun('ingress', sameTupleIn, { ifindex: LO }).allowed).toBe(false);
  });

  it('a stale conntrack entry is re-checked: revoked allow drops with REVOKED', () => {
    const allow = table(10, [
      rule(
        { identity: ID_B, protocol: IPPROTO.TCP, port: 80 },
        { verdict: ALLOW, precedence: 5, cookie: 1 },
      ),
    ]);
    load(allow, table(11, []));
    const out = frame({ src: A, dst: B, protocol: IPPROTO.TCP, sport: 40100, dport: 80 });
    const reply = frame({
      src: B,
      dst: A,
      protocol: IPPROTO.TCP,
      sport: 80,
      dport: 40100,
      tcpFlags: 0x10,
    });
    expect(dp.testRun('egress', out, { ifindex: LO }).allowed).toBe(true);
    load(allow, table(11, [])); // same policy, new revision: still allowed after re-check
    expect(dp.testRun('ingress', reply, { ifindex: LO }).allowed).toBe(true);
    load(table(10, []), table(11, []));
    const before = dp.dropStats().REVOKED.packets;
    expect(dp.testRun('ingress', reply, { ifindex: LO }).allowed).toBe(false);
    expect(dp.dropStats().REVOKED.packets).toBe(before + 1n);
    dp.drainEvents();
    expect(events.some((e) => e.type === 'REVOKED' && e.dport === 40100)).toBe(true);
  });

  it('non-first fragments follow the first; unknown ones drop with FRAG_UNKNOWN', () => {
    load(
      table(10, [
        rule(
          { identity: ID_B, protocol: IPPROTO.UDP, port: 53 },
          { verdict: ALLOW, precedence: 5, cookie: 1 },
        ),
      ]),
      table(11, []),
    );
    for (const [src, dst] of [
      [A, B],
      [A6, B6],
    ] as const) {
      const ok = { src, dst, protocol: IPPROTO.UDP, sport: 5000, dport: 53 };
      const bad = { ...ok, dport: 54 };
      expect(dp.testRun('egress', fragment(ok, 77, 0, true), { ifindex: LO }).allowed).toBe(true);
      expect(dp.testRun('egress', fragment(ok, 77, 1, true), { ifindex: LO }).allowed).toBe(true);
      expect(dp.testRun('egress', fragment(ok, 77, 2, false), { ifindex: LO }).allowed).toBe(true);
      expect(dp.testRun('egress', fragment(bad, 78, 0, true), { ifindex: LO }).allowed).toBe(false);
      expect(dp.testRun('egress', fragment(bad, 78, 1, false), { ifindex: LO }).allowed).toBe(
        false,
      );
      const before = dp.dropStats().FRAG_UNKNOWN.packets;
      expect(dp.testRun('egress', fragment(ok, 79, 1, false), { ifindex: LO }).allowed).toBe(false);
      expect(dp.dropStats().FRAG_UNKNOWN.packets).toBe(before + 1n);
    }
  });

  it('emits DENY and NEW_ALLOWED events with identities, cookie and revision; AUDIT on staged disagreement', () => {
    load(
      table(10, [
        rule(
          { identity: ID_B, protocol: IPPROTO.TCP, port: 80 },
          { verdict: ALLOW, precedence: 5, cookie: 11, staged: 1, stagedCookie: 12 },
        ),
      ]),
      table(11, []),
      ENDPOINT_FLAGS | EP_F_EGRESS_AUDIT,
    );
    dp.drainEvents();
    events.length = 0;
    const rev = dp.revision();
    expect(egress(B, IPPROTO.TCP, 80)).toBe(true);
    expect(egress(B, IPPROTO.TCP, 99)).toBe(false);
    dp.drainEvents();
    const allowed = events.find((e) => e.type === 'NEW_ALLOWED');
    const audit = events.find((e) => e.type === 'AUDIT');
    const denied = events.find((e) => e.type === 'DENY');
    expect(allowed).toMatchObject({
      direction: 'EGRESS',
      srcIdentity: ID_A,
      dstIdentity: ID_B,
      cookie: 11,
      revision: rev,
      dport: 80,
      daddr: B,
    });
    expect(audit).toMatchObject({ stagedVerdict: 'DENY', stagedCookie: 12, verdict: 'ALLOW' });
    expect(denied).toMatchObject({ dropReason: 'POLICY_DENIED', dport: 99, cookie: 0 });
    expect(ID_WORLD).toBe(1);
  });

  it('rate-limits deny events per CPU and reports the suppressed count', () => {
    dp.close();
    dp = Datapath.open({ pinDir: null, denyEventsPerSec: 3 });
    events.length = 0;
    dp.onEvent((e) => events.push(e));
    load(table(10, []), table(11, []));
    const before = dp.eventStats().suppressed;
    for (let i = 0; i < 10; i++) egress(B, IPPROTO.TCP, 1000 + i);
    dp.drainEvents();
    const denies = events.filter((e) => e.type === 'DENY');
    // test runs may migrate between CPUs: at most 3 per CPU are sent, the rest counted
    const suppressed = dp.eventStats().suppressed - before;
    expect(BigInt(denies.length) + suppressed).toBe(10n);
    expect(suppressed).toBeGreaterThan(0n);
  });
});
