/**
 * The datapath engine on hand-made tables: verdicts, deciding cookies
 * mapped to rules, staged (Audit) verdicts, and endpoints without a
 * datapath entry (nodes, externals) allowing their side.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { datapathMatrix, DatapathProber } from '../../../enforcer/src/datapath/engine.js';
import { EP_F_INGRESS_AUDIT, IPPROTO } from '../../../enforcer/src/datapath/structs.js';
import type { RuleRef } from '../../../policy-compiler/src/engine.js';
import type { Endpoint } from '../../../policy-compiler/src/model/endpoint.js';
import type { Pod } from '../../../policy-compiler/src/model/world.js';
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

const pod = (id: string, ips: string[]): Endpoint => ({
  kind: 'pod',
  id,
  pod: { ips } as unknown as Pod,
});
const A = pod('c/ns/a', ['10.0.0.1', 'fd00::1']);
const B = pod('c/ns/b', ['10.0.0.2']);
const C = pod('c/ns/c', ['fd00::3']);
const X: Endpoint = { kind: 'external', id: 'ip:192.0.2.9', ip: '192.0.2.9' };

const ref = (name: string): RuleRef => ({
  kind: 'NetworkPolicy',
  cluster: 'c',
  namespace: 'ns',
  name,
  revision: '1',
  tier: 'NetworkPolicy',
  priority: null,
  direction: 'Ingress',
  ruleIndex: 0,
  ruleName: '',
});
const mnp = (name: string): RuleRef => ({
  kind: 'MeshNetworkPolicy',
  cluster: null,
  namespace: null,
  name,
  revision: '1',
  tier: 'Admin',
  priority: 5,
  direction: 'Ingress',
  ruleIndex: 0,
  ruleName: 'r',
});

const encoded = tables({
  ipcache: [ipc('10.0.0.1', 300), ipc('fd00::1', 300), ipc('10.0.0.2', 301), ipc('fd00::3', 302)],
  endpoints: [
    endpoint('c/ns/a', 300, 1, 2),
    endpoint('c/ns/b', 301, 3, 4, ENDPOINT_FLAGS | EP_F_INGRESS_AUDIT),
    endpoint('c/ns/c', 302, 5, 6),
  ],
  tables: [
    allowAll(1),
    allowAll(2),
    allowAll(3),
    table(4, [
      rule(
        { identity: 300, protocol: IPPROTO.TCP, port: 80 },
        { verdict: ALLOW, precedence: 10, cookie: 7, staged: 1, stagedCookie: 8 },
      ),
    ]),
    allowAll(5),
    table(6, [
      rule(
        { identity: 300, protocol: IPPROTO.UDP },
        { verdict: DENY, precedence: 10, cookie: 9, flags: 8 },
      ),
    ]),
  ],
  cookies: new Map([
    [7, ref('allow-a')],
    [8, mnp('audit-deny')],
    [9, mnp('deny-udp')],
  ]),
});

beforeAll(() => requirePrivileges('root', 'bpffs'));

describe('datapath engine (BPF_PROG_TEST_RUN per probe)', () => {
  let prober: DatapathProber;
  beforeAll(() => {
    prober = DatapathProber.open();
    prober.load(encoded);
  });
  afterAll(() => prober?.close());

  it('answers allow with the deciding rule and the staged Audit verdict', () => {
    const v = prober.probe(
      { from: 'c/ns/a', to: 'c/ns/b', protocol: 'TCP', port: 80 },
      { from: { v4: '10.0.0.1', v6: null }, to: { v4: '10.0.0.2', v6: null } },
    );
    expect(v.verdict).toBe('Allow');
    expect(v.egress.decidedBy).toEqual({ kind: 'default', verdict: 'Allow', isolatedBy: [] });
    expect(v.ingress.decidedBy).toEqual({ kind: 'rule', rule: ref('allow-a'), action: 'Allow' });
    expect(v.ingress.staged).toEqual({
      verdict: 'Deny',
      decidedBy: { kind: 'rule', rule: mnp('audit-deny'), action: 'Deny' },
    });
  });

  it('answers deny by default and by explicit rule, per direction', () => {
    const v = prober.probe(
      { from: 'c/ns/a', to: 'c/ns/b', protocol: 'TCP', port: 81 },
      { from: { v4: '10.0.0.1', v6: null }, to: { v4: '10.0.0.2', v6: null } },
    );
    expect(v.verdict).toBe('Deny');
    expect(v.ingress.decidedBy).toEqual({ kind: 'default', verdict: 'Deny', isolatedBy: [] });
    const u = prober.probe(
      { from: 'c/ns/a', to: 'c/ns/c', protocol: 'UDP', port: 53 },
      { from: { v4: null, v6: 'fd00::1' }, to: { v4: null, v6: 'fd00::3' } },
    );
    expect(u.ingress.decidedBy).toEqual({ kind: 'rule', rule: mnp('deny-udp'), action: 'Deny' });
    expect(u.egress.verdict).toBe('Allow');
  });

  it('repeated probes give the same answer (no conntrack leaks between probes)', () => {
    const p = { from: 'c/ns/b', to: 'c/ns/a', protocol: 'TCP', port: 80 } as const;
    const first = prober.probe(p, {
      from: { v4: '10.0.0.2', v6: null },
      to: { v4: '10.0.0.1', v6: null },
    });
    const again = prober.probe(p, {
      from: { v4: '10.0.0.2', v6: null },
      to: { v4: '10.0.0.1', v6: null },
    });
    expect(again).toEqual(first);
  });

  it('builds the matrix over pairs sharing a family; externals allow their own side', () => {
    const m = datapathMatrix({
      encoded,
      endpoints: [A, B, C, X],
      ports: [{ protocol: 'TCP', port: 80 }],
    });
    const got = m.map((p) => `${p.probe.from}>${p.probe.to}:${p.verdict}`);
    expect(got).toEqual([
      'c/ns/a>c/ns/b:Allow',
      'c/ns/a>c/ns/c:Deny', // c's ingress table has no TCP entry: default deny
      'c/ns/a>ip:192.0.2.9:Allow',
      'c/ns/b>c/ns/a:Allow',
      'c/ns/b>ip:192.0.2.9:Allow',
      'c/ns/c>c/ns/a:Allow',
      'ip:192.0.2.9>c/ns/a:Allow',
      'ip:192.0.2.9>c/ns/b:Deny',
    ]);
  });
});

describe('palisade matrix --engine datapath (cli/src/engines.ts)', () => {
  it('answers the examples world exactly like the reference engine', async () => {
    const { engineFor } = await import('../../../cli/src/engines.js');
    const { loadWorldFromTexts } = await import('../../../policy-compiler/src/load/index.js');
    const { readdirSync, readFileSync, statSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = join(import.meta.dirname, '..', '..', '..', 'examples', 'world');
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const f of readdirSync(d).sort()) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.ya?ml$/.test(f)) files.push(p);
      }
    };
    walk(root);
    const { world, diagnostics } = loadWorldFromTexts(
      files.map((file) => ({ file, text: readFileSync(file, 'utf8') })),
    );
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const req = {
      world,
      ports: [
        { protocol: 'TCP' as const, port: 80 },
        { protocol: 'UDP' as const, port: 53 },
      ],
      externals: ['8.8.8.8'],
    };
    const ref = await engineFor('reference')(req);
    const dpm = await engineFor('datapath')(req);
    expect(ref.length).toBeGreaterThan(10);
    expect(dpm).toEqual(ref);
  });
});
