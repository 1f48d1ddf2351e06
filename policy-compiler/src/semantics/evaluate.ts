/**
 * The reference evaluator: one direction at a time, tier by tier, the way the
 * API reference reads (docs/semantics.md). The same code path serves single
 * explained probes (with a trace) and whole matrices (without).
 */
import type {
  Decision,
  DirectionVerdict,
  Probe,
  ProbeVerdict,
  TierName,
  Verdict,
} from '../engine.js';
import type { Endpoint } from '../model/endpoint.js';
import type { Direction } from '../model/policy.js';
import { PROTOCOLS, type Protocol } from '../model/world.js';
import type { IpAddr } from './ip.js';
import {
  externalEp,
  resolveEp,
  type Applicable,
  type Ep,
  type PodInfo,
  type PreparedWorld,
} from './prepare.js';
import type { CPolicy, CRule } from './rules.js';
import {
  SemanticsError,
  type DecisionStep,
  type ExplainedDirection,
  type ExplainedVerdict,
  type MatrixOptions,
  type RuleResult,
  type TierResult,
} from './types.js';

interface Outcome {
  readonly verdict: Verdict;
  readonly decidedBy: Decision;
}

const DEFAULT_ALLOW: Decision = Object.freeze({
  kind: 'default',
  verdict: 'Allow',
  isolatedBy: Object.freeze([]),
});
const DEFAULT_ALLOW_OUTCOME: Outcome = Object.freeze({
  verdict: 'Allow',
  decidedBy: DEFAULT_ALLOW,
});

/** Everything one direction of one probe looks at. */
interface Ctx {
  readonly dir: Direction;
  readonly subject: PodInfo;
  /** The other end: destination for egress, source for ingress. */
  readonly peer: Ep;
  /** The peer's address used by this probe. */
  readonly peerIp: IpAddr;
  /** Where named ports are resolved: always the destination. */
  readonly dst: Ep;
  readonly protocol: Protocol;
  readonly port: number;
}

const NO_MATCH = -1;
const ALL = -2;

function peerIndex(rule: CRule, c: Ctx): number {
  if (rule.peers === null) return ALL;
  for (let i = 0; i < rule.peers.length; i++) {
    if ((rule.peers[i] as (typeof rule.peers)[number])(c.peer, c.peerIp, c.subject)) return i;
  }
  return NO_MATCH;
}

function portIndex(rule: CRule, c: Ctx): number {
  if (rule.ports === null) return ALL;
  for (let i = 0; i < rule.ports.length; i++) {
    if ((rule.ports[i] as (typeof rule.ports)[number])(c.protocol, c.port, c.dst)) return i;
  }
  return NO_MATCH;
}

/**
 * A rule matches when a peer matches AND a port entry matches. When traced,
 * both halves are evaluated and recorded; `npDecided` says whether an earlier
 * NetworkPolicy rule already allowed (a later match is then `matched`).
 */
function ruleMatches(
  rule: CRule,
  c: Ctx,
  trace: DecisionStep[] | null,
  tier: TierName,
  npDecided: boolean,
): boolean {
  if (trace === null) {
    return peerIndex(rule, c) !== NO_MATCH && portIndex(rule, c) !== NO_MATCH;
  }
  const pi = peerIndex(rule, c);
  const qi = portIndex(rule, c);
  const matched = pi !== NO_MATCH && qi !== NO_MATCH;
  let result: RuleResult = 'no-match';
  if (matched) {
    if (tier === 'NetworkPolicy') result = npDecided ? 'matched' : 'decided';
    else result = rule.action === 'Pass' ? 'pass' : 'decided';
  }
  trace.push({
    step: 'rule',
    tier,
    rule: rule.ref,
    action: rule.action,
    peerMatched: pi !== NO_MATCH,
    peerIndex: pi >= 0 ? pi : null,
    portMatched: qi !== NO_MATCH,
    portIndex: qi >= 0 ? qi : null,
    result,
  });
  return matched;
}

type TierEnd = Outcome | 'passed' | 'no-match';

/**
 * Admin or Baseline tier: policies in order, rules in order, first match wins.
 * Pass ends the tier: from Admin evaluation goes on at the NetworkPolicy tier,
 * from Baseline at the default (allow).
 */
function clusterTier(
  tier: 'Admin' | 'Baseline',
  selecting: readonly CPolicy[],
  c: Ctx,
  trace: DecisionStep[] | null,
  candidates: readonly CPolicy[],
): TierEnd {
  const list = trace === null ? selecting : candidates;
  for (const p of list) {
    if (trace !== null) {
      const sel = p.selects(c.subject);
      trace.push({
        step: 'policy',
        tier,
        policy: p.ref,
        selectsSubject: sel,
        rules: p.rules[c.dir].length,
      });
      if (!sel) continue;
    }
    for (const rule of p.rules[c.dir]) {
      if (!ruleMatches(rule, c, trace, tier, false)) continue;
      if (rule.action === 'Pass') return 'passed';
      return { verdict: rule.action === 'Deny' ? 'Deny' : 'Allow', decidedBy: rule.decision };
    }
  }
  return 'no-match';
}

const isolationDecisions = new WeakMap<readonly CPolicy[], { deny: Outcome; exempt: Outcome }>();

function isolation(nps: readonly CPolicy[]): { deny: Outcome; exempt: Outcome } {
  let hit = isolationDecisions.get(nps);
  if (hit === undefined) {
    const isolatedBy = Object.freeze(
      nps.map((p) => Object.freeze({ namespace: p.ref.namespace as string, name: p.ref.name })),
    );
    hit = {
      deny: { verdict: 'Deny', decidedBy: { kind: 'default', verdict: 'Deny', isolatedBy } },
      exempt: { verdict: 'Allow', decidedBy: { kind: 'default', verdict: 'Allow', isolatedBy } },
    };
    isolationDecisions.set(nps, hit);
  }
  return hit;
}

/**
 * NetworkPolicy tier: when any NetworkPolicy selects the pod for this
 * direction, the union of their rules decides: allowed if any rule matches
 * (the first in policy-name, rule order is reported), else denied — except
 * traffic to/from the pod's own node, which upstream always allows.
 */
function networkPolicyTier(
  nps: readonly CPolicy[],
  c: Ctx,
  trace: DecisionStep[] | null,
  candidates: readonly CPolicy[],
): Outcome | 'not-isolated' | 'node-exempt' | 'isolated-deny' {
  let first: Outcome | null = null;
  // Traced: every NetworkPolicy of the namespace, each followed by its rules
  // when it selects the subject (nps is exactly the selecting ones, same order).
  for (const p of trace === null ? nps : candidates) {
    if (trace !== null) {
      const sel = p.isolates[c.dir] && p.selects(c.subject);
      trace.push({
        step: 'policy',
        tier: 'NetworkPolicy',
        policy: p.ref,
        selectsSubject: sel,
        rules: p.rules[c.dir].length,
      });
      if (!sel) continue;
    }
    for (const rule of p.rules[c.dir]) {
      const matched = ruleMatches(rule, c, trace, 'NetworkPolicy', first !== null);
      if (matched && first === null) {
        first = { verdict: 'Allow', decidedBy: rule.decision };
        if (trace === null) return first;
      }
    }
  }
  if (nps.length === 0) return 'not-isolated';
  if (first !== null) return first;
  return c.subject.nodeIpKeys.has(c.peerIp.key) ? 'node-exempt' : 'isolated-deny';
}

/** One direction for a pod subject, enforced (withAudit=false) or staged (true). */
function evaluatePodDirection(
  prepared: PreparedWorld,
  app: Applicable,
  c: Ctx,
  withAudit: boolean,
  trace: DecisionStep[] | null,
): Outcome {
  // What a trace lists besides the selecting policies (only built when traced).
  const inCluster = (tier: 'Admin' | 'Baseline'): readonly CPolicy[] =>
    trace === null
      ? NONE
      : (prepared.clusterPoliciesByCluster.get(c.subject.cluster.name) ?? []).filter(
          (p) => p.tier === tier && (withAudit || p.mode === 'Enforce'),
        );

  const admin = clusterTier(
    'Admin',
    withAudit ? app.adminWithAudit : app.admin,
    c,
    trace,
    inCluster('Admin'),
  );
  if (typeof admin === 'object') return endTier(trace, 'Admin', 'decided', admin);
  trace?.push({ step: 'tier', tier: 'Admin', result: admin });

  const npCandidates =
    trace === null
      ? NONE
      : (prepared.networkPoliciesByNamespace.get(
          `${c.subject.cluster.name}/${c.subject.namespace.name}`,
        ) ?? NONE);
  const np = networkPolicyTier(app.networkPolicy, c, trace, npCandidates);
  if (typeof np === 'object') return endTier(trace, 'NetworkPolicy', 'decided', np);
  if (np === 'isolated-deny') {
    return endTier(trace, 'NetworkPolicy', np, isolation(app.networkPolicy).deny);
  }
  if (np === 'node-exempt') {
    return endTier(trace, 'NetworkPolicy', np, isolation(app.networkPolicy).exempt);
  }
  trace?.push({ step: 'tier', tier: 'NetworkPolicy', result: np });

  const baseline = clusterTier(
    'Baseline',
    withAudit ? app.baselineWithAudit : app.baseline,
    c,
    trace,
    inCluster('Baseline'),
  );
  if (typeof baseline === 'object') return endTier(trace, 'Baseline', 'decided', baseline);
  trace?.push({ step: 'tier', tier: 'Baseline', result: baseline });
  trace?.push({ step: 'default', verdict: 'Allow' });
  return DEFAULT_ALLOW_OUTCOME;
}

const NONE: readonly CPolicy[] = Object.freeze([]);
const TIERS: readonly TierName[] = ['Admin', 'NetworkPolicy', 'Baseline'];

/** A tier decided: record it and the tiers not reached, return the outcome. */
function endTier(
  trace: DecisionStep[] | null,
  tier: TierName,
  result: TierResult,
  outcome: Outcome,
): Outcome {
  if (trace !== null) {
    trace.push({ step: 'tier', tier, result });
    for (const t of TIERS.slice(TIERS.indexOf(tier) + 1)) {
      trace.push({ step: 'tier', tier: t, result: 'skipped' });
    }
  }
  return outcome;
}

const plainVerdicts = new WeakMap<Decision, DirectionVerdict>();

/** DirectionVerdict objects without staged part are shared per decision (big matrices). */
function directionVerdict(o: Outcome, staged: Outcome | null): DirectionVerdict {
  if (staged === null) {
    let hit = plainVerdicts.get(o.decidedBy);
    if (hit === undefined) {
      hit = Object.freeze({ verdict: o.verdict, decidedBy: o.decidedBy, staged: null });
      plainVerdicts.set(o.decidedBy, hit);
    }
    return hit;
  }
  return {
    verdict: o.verdict,
    decidedBy: o.decidedBy,
    staged: { verdict: staged.verdict, decidedBy: staged.decidedBy },
  };
}

function notSubjectReason(ep: Ep, dir: Direction): string {
  const e = ep.endpoint;
  if (e.kind === 'node') return `nodes are not subject to ${dir.toLowerCase()} policy`;
  if (e.kind === 'external')
    return `addresses outside the world are not subject to ${dir.toLowerCase()} policy`;
  return 'hostNetwork pods are not selected by any policy';
}

interface DirectionResult {
  readonly verdict: DirectionVerdict;
  readonly path: DecisionStep[] | null;
  readonly stagedPath: DecisionStep[] | null;
}

function evaluateDirection(
  prepared: PreparedWorld,
  dir: Direction,
  subjectEp: Ep,
  peer: Ep,
  peerIp: IpAddr,
  dst: Ep,
  protocol: Protocol,
  port: number,
  explain: boolean,
): DirectionResult {
  const subject = subjectEp.pod;
  if (subject === null) {
    const path: DecisionStep[] | null = explain
      ? [
          {
            step: 'subject',
            direction: dir,
            endpoint: subjectEp.id,
            subject: false,
            reason: notSubjectReason(subjectEp, dir),
          },
          { step: 'default', verdict: 'Allow' },
        ]
      : null;
    return { verdict: directionVerdict(DEFAULT_ALLOW_OUTCOME, null), path, stagedPath: null };
  }
  const app = prepared.applicable[dir][subject.index] as Applicable;
  const c: Ctx = { dir, subject, peer, peerIp, dst, protocol, port };
  const path: DecisionStep[] | null = explain
    ? [{ step: 'subject', direction: dir, endpoint: subjectEp.id, subject: true, reason: 'pod' }]
    : null;
  const enforced = evaluatePodDirection(prepared, app, c, false, path);
  let staged: Outcome | null = null;
  let stagedPath: DecisionStep[] | null = null;
  if (app.hasAudit) {
    stagedPath = explain
      ? [{ step: 'subject', direction: dir, endpoint: subjectEp.id, subject: true, reason: 'pod' }]
      : null;
    staged = evaluatePodDirection(prepared, app, c, true, stagedPath);
  }
  return { verdict: directionVerdict(enforced, staged), path, stagedPath };
}

/** The address pair of a probe: the family both ends have, IPv4 preferred. */
function addressPair(from: Ep, to: Ep): [IpAddr, IpAddr] | null {
  if (from.v4 !== null && to.v4 !== null) return [from.v4, to.v4];
  if (from.v6 !== null && to.v6 !== null) return [from.v6, to.v6];
  return null;
}

function checkProbe(probe: Probe): void {
  if (!PROTOCOLS.includes(probe.protocol)) {
    throw new SemanticsError(
      `bad protocol "${String(probe.protocol)}" (allowed: ${PROTOCOLS.join(', ')})`,
    );
  }
  if (!Number.isInteger(probe.port) || probe.port < 1 || probe.port > 65535) {
    throw new SemanticsError(`bad port ${String(probe.port)} (allowed: 1..65535)`);
  }
}

/** Evaluates one probe and explains both directions. Throws SemanticsError on bad input. */
export function evaluate(prepared: PreparedWorld, probe: Probe): ExplainedVerdict {
  checkProbe(probe);
  const from = resolveEp(prepared, probe.from);
  const to = resolveEp(prepared, probe.to);
  if (from.id === to.id) {
    throw new SemanticsError(
      `--from and --to are the same endpoint "${from.id}" (a pod always reaches itself; not evaluated)`,
    );
  }
  for (const ep of [from, to]) {
    if (ep.v4 === null && ep.v6 === null)
      throw new SemanticsError(`"${ep.id}" has no IP address and cannot be probed`);
  }
  const pair = addressPair(from, to);
  if (pair === null) {
    throw new SemanticsError(
      `"${from.id}" and "${to.id}" share no IP family (one is IPv4-only, the other IPv6-only)`,
    );
  }
  const [fromIp, toIp] = pair;
  const eg = evaluateDirection(
    prepared,
    'Egress',
    from,
    to,
    toIp,
    to,
    probe.protocol,
    probe.port,
    true,
  );
  const ing = evaluateDirection(
    prepared,
    'Ingress',
    to,
    from,
    fromIp,
    to,
    probe.protocol,
    probe.port,
    true,
  );
  const explained = (r: DirectionResult): ExplainedDirection => ({
    ...r.verdict,
    path: r.path ?? [],
    stagedPath: r.stagedPath,
  });
  return {
    probe: { from: probe.from, to: probe.to, protocol: probe.protocol, port: probe.port },
    verdict: eg.verdict.verdict === 'Allow' && ing.verdict.verdict === 'Allow' ? 'Allow' : 'Deny',
    egress: explained(eg),
    ingress: explained(ing),
    addresses: { from: fromIp.text, to: toIp.text },
  };
}

function probeable(ep: Ep): boolean {
  return ep.v4 !== null || ep.v6 !== null;
}

/** Endpoints of a matrix: pods, then nodes (world order), then externals (given order, deduplicated); only those with an address. */
function matrixEndpoints(prepared: PreparedWorld, externals: readonly string[]): Ep[] {
  const out = prepared.endpoints.filter(probeable);
  const seen = new Set<string>();
  for (const ip of externals) {
    const ep = (() => {
      try {
        return externalEp(ip);
      } catch (e) {
        throw new SemanticsError(`external ${JSON.stringify(ip)}: ${(e as Error).message}`);
      }
    })();
    const key = (ep.v4 ?? (ep.v6 as IpAddr)).key;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(ep);
  }
  return out;
}

/** Every pod, every node, and each external IP as `ip:<addr>` — those that have an address. */
export function endpointsOf(prepared: PreparedWorld, externals: readonly string[]): Endpoint[] {
  return matrixEndpoints(prepared, externals).map((e) => e.endpoint);
}

/** Resolves an endpoint id; throws SemanticsError naming what is wrong for unknown or malformed ids. */
export function resolveEndpoint(prepared: PreparedWorld, id: string): Endpoint {
  return resolveEp(prepared, id).endpoint;
}

/**
 * Every ordered pair (from != to) × every port, in (from, to, port) order of
 * endpointsOf and the given ports. Pairs that share no IP family are left out.
 */
export function evaluateMatrix(prepared: PreparedWorld, options: MatrixOptions): ProbeVerdict[] {
  for (const p of options.ports)
    checkProbe({ from: '', to: '', protocol: p.protocol, port: p.port });
  const eps = matrixEndpoints(prepared, options.externals);
  const out: ProbeVerdict[] = [];
  for (const from of eps) {
    for (const to of eps) {
      if (from === to) continue;
      const pair = addressPair(from, to);
      if (pair === null) continue;
      const [fromIp, toIp] = pair;
      for (const { protocol, port } of options.ports) {
        const eg = evaluateDirection(
          prepared,
          'Egress',
          from,
          to,
          toIp,
          to,
          protocol,
          port,
          false,
        ).verdict;
        const ing = evaluateDirection(
          prepared,
          'Ingress',
          to,
          from,
          fromIp,
          to,
          protocol,
          port,
          false,
        ).verdict;
        out.push({
          probe: { from: from.id, to: to.id, protocol, port },
          verdict: eg.verdict === 'Allow' && ing.verdict === 'Allow' ? 'Allow' : 'Deny',
          egress: eg,
          ingress: ing,
        });
      }
    }
  }
  return out;
}
