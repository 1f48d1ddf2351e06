/**
 * Differential property with the real programs: for random worlds, the
 * datapath engine (BPF_PROG_TEST_RUN on the compiled tables) gives exactly
 * the reference evaluator's and the compiled simulator's verdict, decidedBy
 * and staged answer for both directions of every probe of the matrix.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DatapathProber } from '../../../enforcer/src/datapath/engine.js';
import { compile } from '../../../policy-compiler/src/compile/compile.js';
import type { World } from '../../../policy-compiler/src/model/index.js';
import { evaluateMatrix, prepareWorld } from '../../../policy-compiler/src/semantics/index.js';
import { compiledEngine } from '../../../policy-compiler/src/simulate/engine.js';
import { requirePrivileges } from '../../support/privileged.js';
import { arbWorld, EXTERNALS, PROBE_PORTS } from '../../support/random-world.js';
import { comparableVerdictText } from '../../support/verdicts.js';

let prober: DatapathProber;
let probes = 0;
beforeAll(() => {
  requirePrivileges('root', 'bpffs');
  prober = DatapathProber.open();
});
afterAll(() => prober?.close());

function firstDisagreement(world: World, port: number): unknown {
  const result = compile(world);
  if (!result.ok) return { compileError: result.error };
  const { encoded, meta } = result.compiled;
  prober.load(encoded, meta);
  const simulated = compiledEngine(encoded, meta);
  const ref = evaluateMatrix(prepareWorld(world), {
    ports: [...PROBE_PORTS, { protocol: 'TCP', port }],
    externals: EXTERNALS,
  });
  for (const r of ref) {
    probes++;
    const d = comparableVerdictText(prober.probe(r.probe));
    const a = comparableVerdictText(r);
    const c = comparableVerdictText(simulated(r.probe));
    if (a !== d || c !== d)
      return { reference: JSON.parse(a), compiled: JSON.parse(c), datapath: JSON.parse(d) };
  }
  return null;
}

describe('reference == compiled == datapath (real BPF programs)', () => {
  it('on 200 random worlds, every probe of the matrix: same verdict, decidedBy and staged per direction', () => {
    fc.assert(
      fc.property(arbWorld(), fc.integer({ min: 1, max: 65535 }), (world, port) => {
        expect(firstDisagreement(world, port)).toBeNull();
      }),
      { seed: 20260405, numRuns: 200 },
    );
    expect(probes).toBeGreaterThan(1000);
  });
});
