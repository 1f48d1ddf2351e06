/** Laws of the reference evaluator over random worlds (fast-check, fixed seeds). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ProbeVerdict } from '../engine.js';
import type { LabelSelector } from '../model/labels.js';
import type {
  ClusterPolicy,
  ClusterPolicyPeer,
  NetworkPolicy,
  NetworkPolicyPeer,
  PortMatch,
} from '../model/policy.js';
import type { World } from '../model/world.js';
import {
  buildWorld,
  cluster,
  cp,
  cpNamespaces,
  cpNetworks,
  cpNodes,
  cpPods,
  ipBlock,
  mnp,
  named,
  namespace,
  node,
  np,
  npPods,
  pod,
  sel,
  tcp,
  udp,
} from '../../../test/support/world-builder.js';
import { evaluate, evaluateMatrix, prepareWorld } from './index.js';

const PORTS = [
  { protocol: 'TCP' as const, port: 80 },
  { protocol: 'TCP' as const, port: 443 },
  { protocol: 'UDP' as const, port: 53 },
];
const RUNS = { seed: 20260402, numRuns: 60 };
const ALL_SEL = sel();

const label = fc.constantFrom('a', 'b', 'c');
const selector: fc.Arbitrary<LabelSelector> = fc.oneof(
  fc.constant(sel()),
  label.map((v) => sel({ app: v })),
  label.map((v) => sel({}, [{ key: 'app', operator: 'NotIn', values: [v] }])),
);
const nsSelector: fc.Arbitrary<LabelSelector> = fc.oneof(
  fc.constant(sel()),
  fc.constantFrom('x', 'y').map((v) => sel({ team: v })),
);
const portMatch: fc.Arbitrary<PortMatch> = fc.oneof(
  fc.constant(tcp(80)),
  fc.constant(tcp(400, 500)),
  fc.constant(udp(53)),
  fc.constant(named('http')),
);
const ports = fc.option(fc.array(portMatch, { minLength: 1, maxLength: 2 }), { nil: undefined });

const npPeer: fc.Arbitrary<NetworkPolicyPeer> = fc.oneof(
  selector.map((s) => npPods(s)),
  fc.tuple(selector, nsSelector).map(([p, n]) => npPods(p, n)),
  fc.constantFrom(
    ipBlock('10.0.0.0/8', ['10.1.0.0/16']),
    ipBlock('192.168.0.0/16'),
    ipBlock('0.0.0.0/0'),
  ),
);
const npRule = fc.record({
  peers: fc.option(fc.array(npPeer, { minLength: 1, maxLength: 2 }), { nil: undefined }),
  ports,
});

const clusterNames = ['east', 'west'];
const cpPeer: fc.Arbitrary<ClusterPolicyPeer> = fc.oneof(
  nsSelector.map((n) => cpNamespaces(n)),
  fc.tuple(nsSelector, selector).map(([n, p]) => cpPods(n, p)),
  fc.constantFrom(cpNodes(sel()), cpNetworks('10.0.0.0/16'), cpNetworks('0.0.0.0/0')),
);
const cpRule = fc.record({
  action: fc.constantFrom('Accept' as const, 'Deny' as const, 'Pass' as const),
  peers: fc.array(cpPeer, { minLength: 1, maxLength: 2 }),
  ports,
});

/** Namespaces east/x, east/y, west/x (team labels); nodes n0, n1 per cluster. */
const NAMESPACES = [
  { c: 'east', n: 'x', team: 'x' },
  { c: 'east', n: 'y', team: 'y' },
  { c: 'west', n: 'x', team: 'x' },
];

function podsArb(): fc.Arbitrary<{ ns: number; app: string; host: boolean; node: number }[]> {
  return fc.array(
    fc.record({
      ns: fc.nat(2),
      app: label,
      host: fc.constantFrom(false, false, false, true),
      node: fc.nat(1),
    }),
    { minLength: 2, maxLength: 7 },
  );
}

function baseWorld(
  pods: { ns: number; app: string; host: boolean; node: number }[],
  nps: NetworkPolicy[],
  cps: ClusterPolicy[],
): World {
  return buildWorld({
    clusters: [cluster('east', { region: 'us' }), cluster('west', { region: 'eu' })],
    namespaces: NAMESPACES.map((n) => namespace(`${n.c}/${n.n}`, { team: n.team })),
    nodes: clusterNames.flatMap((c, ci) =>
      [0, 1].map((i) =>
        node(`${c}/n${i}`, { ip: `192.168.${ci}.${i + 1}`, labels: { idx: String(i) } }),
      ),
    ),
    pods: pods.map((p, i) => {
      const ns = NAMESPACES[p.ns] as (typeof NAMESPACES)[number];
      const ci = clusterNames.indexOf(ns.c);
      return pod(`${ns.c}/${ns.n}/p${i}`, {
        labels: { app: p.app },
        ip: `10.${ci}.${p.ns}.${i + 1}`,
        hostNetwork: p.host,
        node: `n${p.node}`,
        ports: [{ name: 'http', port: 80 }],
      });
    }),
    networkPolicies: nps,
    clusterPolicies: cps,
  });
}

const networkPolicies = fc
  .array(
    fc.record({
      ns: fc.nat(2),
      podSelector: selector,
      types: fc.constantFrom<('Ingress' | 'Egress')[]>(
        ['Ingress'],
        ['Egress'],
        ['Ingress', 'Egress'],
      ),
      ingress: fc.array(npRule, { maxLength: 2 }),
      egress: fc.array(npRule, { maxLength: 2 }),
    }),
    { maxLength: 3 },
  )
  .map((specs) =>
    specs.map((s, i) => {
      const ns = NAMESPACES[s.ns] as (typeof NAMESPACES)[number];
      return np(`${ns.c}/${ns.n}/np${i}`, {
        podSelector: s.podSelector,
        policyTypes: s.types,
        ingress: s.ingress,
        egress: s.egress,
      });
    }),
  );

const clusterPolicies = fc
  .array(
    fc.record({
      mesh: fc.boolean(),
      audit: fc.boolean(),
      cluster: fc.constantFrom('east', 'west'),
      tier: fc.constantFrom('Admin' as const, 'Baseline' as const),
      priority: fc.constantFrom(1, 5, 5, 9),
      subject: fc.record({ namespaces: nsSelector, pods: selector }),
      ingress: fc.array(cpRule, { maxLength: 2 }),
      egress: fc.array(cpRule, { maxLength: 2 }),
    }),
    { maxLength: 3 },
  )
  .map((specs) =>
    specs.map((s, i) => {
      const opts = {
        tier: s.tier,
        priority: s.priority,
        subject: s.subject,
        ingress: s.ingress,
        egress: s.egress,
      };
      return s.mesh
        ? mnp(`m${i}`, { ...opts, mode: s.audit ? 'Audit' : 'Enforce' })
        : cp(`c${i}`, { ...opts, cluster: s.cluster });
    }),
  );

const summary = (m: ProbeVerdict[]) =>
  m.map((r) => ({ probe: r.probe, verdict: r.verdict, eg: r.egress, in: r.ingress }));

describe('laws of the reference evaluator', () => {
  it('no policy: every probe is allowed by default in both directions', () => {
    fc.assert(
      fc.property(podsArb(), (pods) => {
        const m = evaluateMatrix(prepareWorld(baseWorld(pods, [], [])), {
          ports: PORTS,
          externals: ['8.8.8.8'],
        });
        for (const r of m) {
          expect(r.verdict).toBe('Allow');
          expect(r.egress.decidedBy).toEqual({ kind: 'default', verdict: 'Allow', isolatedBy: [] });
          expect(r.ingress.decidedBy).toEqual({
            kind: 'default',
            verdict: 'Allow',
            isolatedBy: [],
          });
          expect(r.egress.staged).toBeNull();
        }
      }),
      RUNS,
    );
  });

  it('a pod isolated for ingress by a NetworkPolicy with no rules denies every ingress except from its own node', () => {
    fc.assert(
      fc.property(podsArb(), fc.nat(6), (pods, pick) => {
        const target = pick % pods.length;
        const spec = pods[target] as (typeof pods)[number];
        const ns = NAMESPACES[spec.ns] as (typeof NAMESPACES)[number];
        // Select exactly the target by a unique label.
        const world = baseWorld(pods, [], []);
        const targetId = `${ns.c}/${ns.n}/p${target}`;
        const withLabel: World = {
          ...world,
          pods: world.pods.map((p) =>
            `${p.cluster}/${p.namespace}/${p.name}` === targetId
              ? { ...p, labels: { ...p.labels, target: 'yes' } }
              : p,
          ),
          networkPolicies: [
            np(`${ns.c}/${ns.n}/deny`, { podSelector: sel({ target: 'yes' }), ingress: [] }),
          ],
        };
        const prepared = prepareWorld(withLabel);
        const nodeIp = `192.168.${clusterNames.indexOf(ns.c)}.${spec.node + 1}`;
        for (const r of evaluateMatrix(prepared, { ports: PORTS, externals: ['8.8.8.8'] })) {
          if (r.probe.to !== targetId) continue;
          if (spec.host) {
            expect(r.ingress.verdict).toBe('Allow'); // hostNetwork pods are never isolated
            continue;
          }
          const from = evaluate(prepared, r.probe).addresses.from;
          expect(r.ingress.verdict).toBe(from === nodeIp ? 'Allow' : 'Deny');
        }
      }),
      RUNS,
    );
  });

  it('evaluateMatrix and evaluate agree on verdict, decidedBy and staged of every probe', () => {
    fc.assert(
      fc.property(podsArb(), networkPolicies, clusterPolicies, (pods, nps, cps) => {
        const prepared = prepareWorld(baseWorld(pods, nps, cps));
        for (const r of evaluateMatrix(prepared, { ports: PORTS, externals: ['10.0.0.200'] })) {
          const e = evaluate(prepared, r.probe);
          expect(r.verdict).toBe(e.verdict);
          expect(r.egress).toEqual({
            verdict: e.egress.verdict,
            decidedBy: e.egress.decidedBy,
            staged: e.egress.staged,
          });
          expect(r.ingress).toEqual({
            verdict: e.ingress.verdict,
            decidedBy: e.ingress.decidedBy,
            staged: e.ingress.staged,
          });
        }
      }),
      { ...RUNS, numRuns: 40 },
    );
  });

  it('the verdicts do not depend on the order policies are listed in', () => {
    fc.assert(
      fc.property(podsArb(), networkPolicies, clusterPolicies, (pods, nps, cps) => {
        const w = baseWorld(pods, nps, cps);
        const reversed: World = {
          ...w,
          networkPolicies: [...w.networkPolicies].reverse(),
          clusterPolicies: [...w.clusterPolicies].reverse(),
        };
        const opts = { ports: PORTS, externals: [] };
        expect(summary(evaluateMatrix(prepareWorld(reversed), opts))).toEqual(
          summary(evaluateMatrix(prepareWorld(w), opts)),
        );
      }),
      RUNS,
    );
  });

  it('Audit-mode policies never change the enforced verdict; staged is present only where one applies', () => {
    fc.assert(
      fc.property(podsArb(), networkPolicies, clusterPolicies, (pods, nps, cps) => {
        const w = baseWorld(pods, nps, cps);
        const withoutAudit: World = {
          ...w,
          clusterPolicies: w.clusterPolicies.filter((p) => p.mode !== 'Audit'),
        };
        const opts = { ports: PORTS, externals: [] };
        const a = evaluateMatrix(prepareWorld(w), opts);
        const b = evaluateMatrix(prepareWorld(withoutAudit), opts);
        const hasAudit = w.clusterPolicies.some((p) => p.mode === 'Audit');
        expect(a.length).toBe(b.length);
        a.forEach((r, i) => {
          const s = b[i] as ProbeVerdict;
          expect([r.verdict, r.egress.decidedBy, r.ingress.decidedBy]).toEqual([
            s.verdict,
            s.egress.decidedBy,
            s.ingress.decidedBy,
          ]);
          expect(s.egress.staged).toBeNull();
          expect(s.ingress.staged).toBeNull();
          if (!hasAudit) expect(r.ingress.staged).toBeNull();
        });
      }),
      RUNS,
    );
  });

  it('an Admin Pass that matches everything first gives the verdicts of the world without Admin policies', () => {
    const everything = [cpNamespaces(ALL_SEL), cpNodes(ALL_SEL), cpNetworks('0.0.0.0/0', '::/0')];
    const passAll = mnp('0-pass-all', {
      priority: 0,
      ingress: [{ action: 'Pass', peers: everything }],
      egress: [{ action: 'Pass', peers: everything }],
    });
    fc.assert(
      fc.property(podsArb(), networkPolicies, clusterPolicies, (pods, nps, cps) => {
        const w = baseWorld(pods, nps, cps);
        const withPass: World = { ...w, clusterPolicies: [passAll, ...w.clusterPolicies] };
        const noAdmin: World = {
          ...w,
          clusterPolicies: w.clusterPolicies.filter((p) => p.tier !== 'Admin'),
        };
        const opts = { ports: PORTS, externals: ['8.8.8.8'] };
        const enforced = (m: ProbeVerdict[]) =>
          m.map((r) => [r.probe, r.verdict, r.egress.decidedBy, r.ingress.decidedBy]);
        expect(enforced(evaluateMatrix(prepareWorld(withPass), opts))).toEqual(
          enforced(evaluateMatrix(prepareWorld(noAdmin), opts)),
        );
      }),
      RUNS,
    );
  });
});
