/** The evaluator's API around the semantics: endpoints, errors, decision paths, matrix shape. */
import { describe, expect, it } from 'vitest';
import {
  ALL,
  buildWorld,
  cp,
  cpNamespaces,
  mnp,
  namespace,
  node,
  np,
  npPods,
  pod,
  sel,
  tcp,
} from '../../../test/support/world-builder.js';
import {
  endpointsOf,
  evaluate,
  evaluateMatrix,
  formatExplanation,
  prepareWorld,
  resolveEndpoint,
  SemanticsError,
  type DecisionStep,
} from './index.js';

const world = buildWorld({
  namespaces: [namespace('x', { ns: 'x' }), namespace('y', { ns: 'y' })],
  pods: [
    pod('x/a', { ip: '10.0.1.1', labels: { pod: 'a' }, node: 'n1' }),
    pod('x/b', { ip: '10.0.1.2', labels: { pod: 'b' }, node: 'n1' }),
    pod('y/a', { ip: '10.0.2.1', labels: { pod: 'a' } }),
    pod('y/pending', { labels: { pod: 'p' } }),
    pod('y/v6', { ip: 'fd00::1' }),
    pod('y/hn', { hostNetwork: true, node: 'n1' }),
  ],
  nodes: [node('n1', { ip: '192.168.0.1' })],
  networkPolicies: [
    np('x/allow-y', { ingress: [{ peers: [npPods(ALL, sel({ ns: 'y' }))], ports: [tcp(80)] }] }),
  ],
  clusterPolicies: [
    cp('pass-y', {
      priority: 1,
      subject: { namespaces: sel({ ns: 'x' }) },
      ingress: [{ action: 'Pass', peers: [cpNamespaces(sel({ ns: 'y' }))] }],
    }),
    cp('other', { priority: 0, subject: { namespaces: sel({ ns: 'y' }) }, ingress: [] }),
    mnp('audit', {
      mode: 'Audit',
      priority: 3,
      subject: { namespaces: sel({ ns: 'x' }) },
      ingress: [{ action: 'Deny', peers: [cpNamespaces(ALL)] }],
    }),
  ],
});
const prepared = prepareWorld(world);

describe('endpoints', () => {
  // docs/semantics.md "Endpoints": pods, then nodes, then externals; only those with an address.
  it('lists pods, nodes and externals that have an address, in world order', () => {
    const ids = endpointsOf(prepared, ['8.8.8.8', '8.8.8.8', 'fd00::99']).map((e) => e.id);
    expect(ids).toEqual([
      'default/x/a',
      'default/x/b',
      'default/y/a',
      'default/y/hn',
      'default/y/v6',
      'node:default/n1',
      'ip:8.8.8.8',
      'ip:fd00::99',
    ]);
  });
  it('rejects a malformed external address', () => {
    expect(() => endpointsOf(prepared, ['8.8.8'])).toThrow(/not an IP address: "8.8.8"/);
  });
  it('resolves ids and names what is wrong with unknown ones', () => {
    expect(resolveEndpoint(prepared, 'default/x/a')).toMatchObject({
      kind: 'pod',
      id: 'default/x/a',
    });
    expect(resolveEndpoint(prepared, 'node:default/n1')).toMatchObject({ kind: 'node' });
    expect(resolveEndpoint(prepared, 'ip:1.2.3.4')).toMatchObject({
      kind: 'external',
      ip: '1.2.3.4',
    });
    expect(() => resolveEndpoint(prepared, 'default/x/zz')).toThrow(SemanticsError);
    expect(() => resolveEndpoint(prepared, 'default/x/zz')).toThrow(
      'unknown pod "default/x/zz": no such pod in the world',
    );
    expect(() => resolveEndpoint(prepared, 'node:default/n9')).toThrow(
      'unknown node "node:default/n9"',
    );
    expect(() => resolveEndpoint(prepared, 'x/a')).toThrow(
      /bad endpoint id "x\/a" \(allowed: <cluster>\/<namespace>\/<pod>/,
    );
  });
});

describe('prepareWorld: bad worlds', () => {
  it('names a malformed CIDR of a policy', () => {
    const bad = buildWorld({
      pods: [pod('x/a', { ip: '10.0.0.1' })],
      networkPolicies: [
        np('x/bad', { ingress: [{ peers: [{ kind: 'ipBlock', cidr: '10.0.0/8', except: [] }] }] }),
      ],
    });
    expect(() => prepareWorld(bad)).toThrow(
      'NetworkPolicy default/x/bad ingress[0]: not a CIDR: "10.0.0/8" (allowed: <IPv4 or IPv6 address>/<prefix length>)',
    );
  });
  it('refuses duplicate pods', () => {
    const dup = buildWorld({
      pods: [pod('x/a', { ip: '10.0.0.1' }), pod('x/a', { ip: '10.0.0.2' })],
    });
    expect(() => prepareWorld(dup)).toThrow('duplicate pod default/x/a');
  });
  it('uses the pod addresses of a hostNetwork pod whose node is not in the world', () => {
    const w = buildWorld({
      pods: [
        pod('x/a', { ip: '10.0.0.1' }),
        pod('x/hn', { hostNetwork: true, node: 'gone', ip: '192.168.9.9' }),
      ],
    });
    const v = evaluate(prepareWorld(w), {
      from: 'default/x/hn',
      to: 'default/x/a',
      protocol: 'TCP',
      port: 80,
    });
    expect(v.addresses.from).toBe('192.168.9.9');
  });
});

describe('evaluate: bad probes', () => {
  const probe = { from: 'default/y/a', to: 'default/x/a', protocol: 'TCP' as const, port: 80 };
  it('refuses endpoints without an address', () => {
    expect(() => evaluate(prepared, { ...probe, from: 'default/y/pending' })).toThrow(
      '"default/y/pending" has no IP address and cannot be probed',
    );
  });
  it('refuses pairs that share no IP family', () => {
    expect(() => evaluate(prepared, { ...probe, from: 'default/y/v6' })).toThrow(
      /share no IP family/,
    );
  });
  it('refuses the same endpoint on both ends', () => {
    expect(() => evaluate(prepared, { ...probe, from: 'default/x/a' })).toThrow(/same endpoint/);
  });
  it('refuses bad ports and protocols', () => {
    expect(() => evaluate(prepared, { ...probe, port: 0 })).toThrow(
      'bad port 0 (allowed: 1..65535)',
    );
    expect(() => evaluate(prepared, { ...probe, port: 65536 })).toThrow(/bad port 65536/);
    expect(() => evaluate(prepared, { ...probe, protocol: 'ICMP' as never })).toThrow(
      'bad protocol "ICMP" (allowed: TCP, UDP, SCTP)',
    );
  });
  it('uses the node address of a hostNetwork pod', () => {
    expect(evaluate(prepared, { ...probe, from: 'default/y/hn' }).addresses).toEqual({
      from: '192.168.0.1',
      to: '10.0.1.1',
    });
  });
});

describe('decision path', () => {
  const v = evaluate(prepared, {
    from: 'default/y/a',
    to: 'default/x/a',
    protocol: 'TCP',
    port: 80,
  });
  const brief = (s: DecisionStep): string => {
    switch (s.step) {
      case 'subject':
        return `subject ${s.endpoint} ${s.subject}`;
      case 'policy':
        return `policy ${s.policy.name} ${s.selectsSubject}`;
      case 'rule':
        return `rule ${s.rule.name}[${s.rule.ruleIndex}] peer=${s.peerMatched}@${s.peerIndex} port=${s.portMatched}@${s.portIndex} ${s.result}`;
      case 'tier':
        return `tier ${s.tier} ${s.result}`;
      case 'default':
        return `default ${s.verdict}`;
    }
  };
  it('lists every tier, policy and rule considered, in order, and which one decided', () => {
    expect(v.ingress.path.map(brief)).toEqual([
      'subject default/x/a true',
      'policy other false',
      'policy pass-y true',
      'rule pass-y[0] peer=true@0 port=true@null pass',
      'tier Admin passed',
      'policy allow-y true',
      'rule allow-y[0] peer=true@0 port=true@0 decided',
      'tier NetworkPolicy decided',
      'tier Baseline skipped',
    ]);
  });
  it('leaves Audit policies out of the enforced path and puts them in the staged path', () => {
    expect(v.ingress.path.some((s) => s.step === 'policy' && s.policy.name === 'audit')).toBe(
      false,
    );
    // Pass comes first, so the Audit Deny is never reached: staged = enforced.
    expect(v.ingress.staged).toEqual({ verdict: 'Allow', decidedBy: v.ingress.decidedBy });
    expect(v.ingress.stagedPath?.filter((s) => s.step === 'policy').map(brief)).toEqual([
      'policy other false',
      'policy pass-y true',
      'policy allow-y true',
    ]);
  });
  it('shows a port mismatch separately from a peer match', () => {
    const w = evaluate(prepared, {
      from: 'default/y/a',
      to: 'default/x/a',
      protocol: 'TCP',
      port: 81,
    });
    expect(w.ingress.path.map(brief)).toContain(
      'rule allow-y[0] peer=true@0 port=false@null no-match',
    );
    expect(w.ingress.path.map(brief)).toContain('tier NetworkPolicy isolated-deny');
    // Pass ends the Admin tier before the Audit MNP (priority 3) is reached.
    expect(w.ingress.staged?.verdict).toBe('Deny');
    expect(w.ingress.staged?.decidedBy).toEqual(w.ingress.decidedBy);
  });
  it('says why a node is not a subject of egress policy', () => {
    const w = evaluate(prepared, {
      from: 'node:default/n1',
      to: 'default/y/a',
      protocol: 'TCP',
      port: 80,
    });
    expect(w.egress.path).toEqual([
      {
        step: 'subject',
        direction: 'Egress',
        endpoint: 'node:default/n1',
        subject: false,
        reason: 'nodes are not subject to egress policy',
      },
      { step: 'default', verdict: 'Allow' },
    ]);
  });
  it('is valid JSON and prints as text', () => {
    expect(JSON.parse(JSON.stringify(v))).toEqual(v);
    const text = formatExplanation(v);
    expect(text).toContain('default/y/a -> default/x/a TCP/80 (10.0.2.1 -> 10.0.1.1): Allow');
    expect(text).toContain('ingress: Allow — Allow by NetworkPolicy default/x/allow-y ingress[0]');
    expect(text).toContain('Admin tier: Pass: continue at the NetworkPolicy tier');
  });
});

describe('evaluateMatrix', () => {
  const ports = [
    { protocol: 'TCP' as const, port: 80 },
    { protocol: 'UDP' as const, port: 53 },
  ];
  const m = evaluateMatrix(prepared, { ports, externals: ['8.8.8.8'] });
  it('covers every ordered pair with a common IP family, (from, to, port) order', () => {
    const eps = endpointsOf(prepared, ['8.8.8.8']);
    const v4 = eps.filter((e) => e.id !== 'default/y/v6').map((e) => e.id);
    const expected: string[] = [];
    for (const f of v4)
      for (const t of v4)
        if (f !== t) for (const p of ports) expected.push(`${f} ${t} ${p.protocol}/${p.port}`);
    expect(
      m.map((r) => `${r.probe.from} ${r.probe.to} ${r.probe.protocol}/${r.probe.port}`),
    ).toEqual(expected);
  });
  it('agrees with evaluate on every probe', () => {
    for (const r of m) {
      const e = evaluate(prepared, r.probe);
      expect({ v: r.verdict, eg: r.egress, in: r.ingress }).toEqual({
        v: e.verdict,
        eg: { verdict: e.egress.verdict, decidedBy: e.egress.decidedBy, staged: e.egress.staged },
        in: {
          verdict: e.ingress.verdict,
          decidedBy: e.ingress.decidedBy,
          staged: e.ingress.staged,
        },
      });
    }
  });
  it('rejects bad ports up front', () => {
    expect(() =>
      evaluateMatrix(prepared, { ports: [{ protocol: 'TCP', port: 0 }], externals: [] }),
    ).toThrow(/bad port 0/);
  });
});

describe('explanation text of tier endings', () => {
  const w = buildWorld({
    pods: [pod('x/a', { ip: '10.0.1.1', node: 'n1' }), pod('y/b', { ip: '10.0.2.1' })],
    nodes: [node('n1', { ip: '192.168.0.1' })],
    networkPolicies: [np('x/deny', { ingress: [] })],
    clusterPolicies: [
      cp('baseline-pass', {
        tier: 'Baseline',
        priority: 1,
        ingress: [{ action: 'Pass', peers: [cpNamespaces(ALL)] }],
      }),
      cp('baseline-deny', {
        tier: 'Baseline',
        priority: 2,
        ingress: [{ action: 'Deny', peers: [cpNamespaces(ALL)] }],
      }),
    ],
  });
  const p = prepareWorld(w);
  it('names the own-node exemption', () => {
    const v = evaluate(p, {
      from: 'node:default/n1',
      to: 'default/x/a',
      protocol: 'TCP',
      port: 22,
    });
    expect(v.ingress.path).toContainEqual({
      step: 'tier',
      tier: 'NetworkPolicy',
      result: 'node-exempt',
    });
    expect(formatExplanation(v)).toContain(
      "ingress: Allow — Allow: isolated by NetworkPolicy x/deny, but traffic with the pod's own node is always allowed",
    );
  });
  it('names a Baseline Pass', () => {
    const v = evaluate(p, { from: 'default/x/a', to: 'default/y/b', protocol: 'TCP', port: 22 });
    expect(v.ingress.path).toContainEqual({ step: 'tier', tier: 'Baseline', result: 'passed' });
    expect(v.ingress.decidedBy).toEqual({ kind: 'default', verdict: 'Allow', isolatedBy: [] });
    expect(formatExplanation(v)).toContain(
      'Baseline tier: Pass: the rest of the Baseline tier is skipped',
    );
  });
});
