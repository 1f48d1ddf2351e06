/**
 * What engines must agree on for one probe: the verdict, and per direction the verdict, the
 * deciding rule and the staged (Audit) answer. Fields that only explain (traces, matched-rule
 * lists) are left out so that engines which do not produce them can still be compared.
 */
import type { DirectionVerdict, ProbeVerdict } from '../../policy-compiler/src/engine.js';

const comparableDirection = (d: DirectionVerdict): unknown => ({
  verdict: d.verdict,
  decidedBy: d.decidedBy,
  staged: d.staged,
});

export const comparableVerdict = (p: ProbeVerdict): unknown => ({
  probe: p.probe,
  verdict: p.verdict,
  egress: comparableDirection(p.egress),
  ingress: comparableDirection(p.ingress),
});

/** The same as one string, for set/equality checks over many probes. */
export const comparableVerdictText = (p: ProbeVerdict): string =>
  JSON.stringify(comparableVerdict(p));
