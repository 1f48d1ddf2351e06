/**
 * The stable JSON shape of probe results (`matrix -o json`, `diff -o json`),
 * documented in docs/cli.md. Only engine-contract fields: every engine can
 * produce it, and the decision path of the reference engine stays out.
 */
import type {
  DirectionVerdict,
  ProbeVerdict,
  Verdict,
} from '../../../policy-compiler/src/index.js';

export interface ProbeJson {
  readonly from: string;
  readonly to: string;
  readonly protocol: string;
  readonly port: number;
  readonly verdict: Verdict;
  readonly egress: DirectionVerdict;
  readonly ingress: DirectionVerdict;
}

const direction = (d: DirectionVerdict): DirectionVerdict => ({
  verdict: d.verdict,
  decidedBy: d.decidedBy,
  staged: d.staged === null ? null : { verdict: d.staged.verdict, decidedBy: d.staged.decidedBy },
});

export function probeJson(v: ProbeVerdict): ProbeJson {
  return {
    from: v.probe.from,
    to: v.probe.to,
    protocol: v.probe.protocol,
    port: v.probe.port,
    verdict: v.verdict,
    egress: direction(v.egress),
    ingress: direction(v.ingress),
  };
}

/** The verdict with Audit-mode policies enforced (equal to `verdict` when none applies). */
export function stagedVerdict(v: ProbeVerdict): Verdict {
  const e = (v.egress.staged ?? v.egress).verdict;
  const i = (v.ingress.staged ?? v.ingress).verdict;
  return e === 'Allow' && i === 'Allow' ? 'Allow' : 'Deny';
}

export const probeKey = (p: { from: string; to: string; protocol: string; port: number }): string =>
  `${p.from}\u0000${p.to}\u0000${p.protocol}/${p.port}`;
