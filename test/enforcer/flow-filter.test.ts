import { describe, expect, it } from 'vitest';
import { decodeEvent } from '../../enforcer/src/flows/event-decode.js';
import { compileFilter, filterView } from '../../enforcer/src/flows/filter.js';
import { toFlowRecord, type FlowRecord } from '../../enforcer/src/flows/record.js';
import { buildEvent, type EventFields } from './event-builder.js';
import { makeContext } from './flow-context.js';

function rec(f: EventFields): FlowRecord {
  const r = decodeEvent(buildEvent(f));
  if (!r.ok) throw new Error(r.error);
  return toFlowRecord(r.event, makeContext());
}

const deny = rec({ type: 1, cookie: 11, dropReason: 1, dport: 5432 });
const allow = rec({ type: 2, verdict: 1, direction: 1, cookie: 12, dport: 443 });

function matches(src: string, r: FlowRecord): boolean {
  const c = compileFilter(src);
  if (!c.ok) throw new Error(`${src}: ${c.error.message}`);
  return c.filter.matches(r);
}

describe('CEL flow filters', () => {
  it.each([
    ["flow.verdict == 'DROPPED'", true, false],
    ["flow.verdict == 'FORWARDED' && flow.dst.port == 443", false, true],
    ['flow.dst.port + 1 == 5433', true, false], // ints are CEL int, not double
    ["flow.src.labels['app'] == 'web'", true, true],
    ["'tier' in flow.src.labels && flow.src.labels.tier == 'front'", true, true],
    ["flow.policy.kind == 'ClusterNetworkPolicy' && flow.rule.priority < 100", true, false],
    ["flow.rule.tier == 'NetworkPolicy'", false, true],
    ["inCidr(flow.dst.ip, '10.0.0.0/24') && flow.protocol == 'TCP'", true, true],
    ["inCidr(flow.dst.ip, '10.0.1.0/24')", false, false],
    ["'SYN' in flow.tcp_flags", true, true],
    ["flow.src.id.startsWith('east/shop/')", true, true],
    ['flow.bytes > 10 && flow.packets == 1', true, true],
  ])('%s', (src, onDeny, onAllow) => {
    expect([matches(src, deny), matches(src, allow)]).toEqual([onDeny, onAllow]);
  });

  it('an evaluation error is "no match", not an exception', () => {
    // labels['missing'] is a runtime error in CEL; the filter simply does not match.
    expect(matches("flow.src.labels['missing'] == 'x'", deny)).toBe(false);
    expect(matches("!(flow.src.labels['missing'] == 'x')", deny)).toBe(false);
    expect(matches("inCidr(flow.dst.ip, 'nonsense')", deny)).toBe(false);
  });

  it.each([
    ["flow.verdict.matches('D.*')", 'matches() is not allowed', 0],
    ["flow.verdict == 'x' || matches(flow.verdict, '(a+)+$')", 'matches() is not allowed', 23],
    ['flow.verdict ==', 'Unexpected token', 15],
    ['flow.nope == 1', 'No such key: nope', 5],
    ['flow.verdict == 1', 'no such overload', 0],
    ['flow.dst.port', 'must be a bool', 0],
    ['', 'empty filter', 0],
  ])('compile error for %j has a message and position', (src, msg, start) => {
    const c = compileFilter(src);
    expect(c.ok).toBe(false);
    if (c.ok) return;
    expect(c.error.message).toContain(msg);
    expect(c.error.start).toBe(start);
    expect(c.error.column).toBe(start + 1);
    expect(c.error.message).not.toContain('\n');
  });

  it('rejects oversized filters and deep nesting within bounds', () => {
    expect(compileFilter('true && '.repeat(1000) + 'true').ok).toBe(false);
    expect(compileFilter('('.repeat(100) + 'true' + ')'.repeat(100)).ok).toBe(false);
  });

  it('the view gives every field a value and BigInt integers', () => {
    const v = filterView(allow);
    expect(v.dst.port).toBe(443n);
    expect(v.rule.priority).toBe(-1n); // NetworkPolicy: no priority
    expect(v.staged).toEqual({ verdict: '', cookie: 0n });
    expect(v.drop_reason).toBe('');
  });
});

/** A CEL literal for a view value (strings via JSON escapes, which CEL shares). */
function celLiteral(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return v < 0n ? `-${-v}` : `${v}`;
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(celLiteral).join(', ')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .map((k) => `${JSON.stringify(k)}: ${celLiteral(o[k])}`)
    .join(', ')}}`;
}

/** Every leaf path of the view: flow.a.b with its value (maps and lists compared whole). */
function leaves(v: Record<string, unknown>, prefix = 'flow'): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, x] of Object.entries(v)) {
    const path = `${prefix}.${k}`;
    const isMessage = typeof x === 'object' && x !== null && !Array.isArray(x) && k !== 'labels';
    if (isMessage) out.push(...leaves(x as Record<string, unknown>, path));
    else out.push([path, x]);
  }
  return out;
}

describe('the lazy view filters read', () => {
  it('gives every field the value filterView gives it, for every kind of record', () => {
    const records = [
      deny,
      allow,
      rec({ type: 3, verdict: 1, staged: 1, cookie: 12, stagedCookie: 13, direction: 1 }),
      rec({ type: 4, verdict: 0, dropReason: 6, protocol: 17, suppressed: 4 }),
      rec({ protocol: 1, sport: (8 << 8) | 0, cookie: 0, dropReason: 2 }),
      rec({ saddr: 'fd00::9', daddr: 'fd00::10', protocol: 58, sport: (128 << 8) | 3 }),
      rec({ protocol: 47, daddr: '198.51.100.7', tcpFlags: 0x12 }),
    ];
    for (const r of records) {
      const view = filterView(r) as unknown as Record<string, unknown>;
      const paths = leaves(view);
      expect(paths.length).toBeGreaterThan(30);
      for (const [path, value] of paths) {
        const src = `${path} == ${celLiteral(value)}`;
        expect([src, matches(src, r)]).toEqual([src, true]);
      }
    }
  });
});
