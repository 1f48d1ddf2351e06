/**
 * Differential property: for random worlds, the compiled engine (simulator
 * over the encoded tables) gives exactly the reference evaluator's verdict,
 * decidedBy and staged answer for both directions of every probe of the
 * full matrix (every ordered endpoint pair × a port set).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../policy-compiler/src/compile/compile.js';
import { compiledEngine } from '../../policy-compiler/src/simulate/engine.js';
import { compiledMatrix } from '../../policy-compiler/src/simulate/matrix.js';
import { evaluateMatrix, prepareWorld } from '../../policy-compiler/src/semantics/index.js';
import type { World } from '../../policy-compiler/src/model/index.js';
import { arbWorld, EXTERNALS, PROBE_PORTS } from '../support/random-world.js';
import { comparableVerdict } from '../support/verdicts.js';

/** First probe where the engines disagree, or null. */
export function firstDisagreement(
  world: World,
  extraPorts: readonly { protocol: 'TCP' | 'UDP' | 'SCTP'; port: number }[] = [],
): unknown {
  const result = compile(world);
  if (!result.ok) return { compileError: result.error };
  const engine = compiledEngine(result.compiled.encoded, result.compiled.meta);
  const ref = evaluateMatrix(prepareWorld(world), {
    ports: [...PROBE_PORTS, ...extraPorts],
    externals: EXTERNALS,
  });
  for (const r of ref) {
    const c = engine(r.probe);
    const a = comparableVerdict(r);
    const b = comparableVerdict(c);
    if (JSON.stringify(a) !== JSON.stringify(b)) return { reference: a, compiled: b };
  }
  return null;
}

describe('compiled engine == reference engine', () => {
  it('on 1,000 random worlds, every probe of the matrix: same verdict, decidedBy and staged per direction', () => {
    fc.assert(
      fc.property(arbWorld(), fc.integer({ min: 1, max: 65535 }), (world, port) => {
        expect(firstDisagreement(world, [{ protocol: 'TCP', port }])).toBeNull();
      }),
      { seed: 20260402, numRuns: 1000 },
    );
  });
});

describe('compiledMatrix', () => {
  it('lists the same probes, in the same order, as the reference matrix', () => {
    fc.assert(
      fc.property(arbWorld(), (world) => {
        const ref = evaluateMatrix(prepareWorld(world), {
          ports: PROBE_PORTS,
          externals: EXTERNALS,
        });
        let got;
        try {
          got = compiledMatrix(world, PROBE_PORTS, EXTERNALS);
        } catch (e) {
          expect((e as Error).message).toMatch(/compile failed/);
          return;
        }
        expect(got.map(comparableVerdict)).toEqual(ref.map(comparableVerdict));
      }),
      { seed: 99, numRuns: 100 },
    );
  });
});
