/**
 * Every upstream conformance world (test/conformance/cases) through the real
 * programs: the datapath engine gives the reference evaluator's answer
 * (verdict, decidedBy, staged) for every probe of each case's matrix.
 * Agreement with upstream's expected verdicts is the conformance suite's
 * job; this one checks that the datapath enforces what the reference says.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DatapathProber } from '../../../enforcer/src/datapath/engine.js';
import { compile } from '../../../policy-compiler/src/compile/compile.js';
import { loadWorldFromTexts } from '../../../policy-compiler/src/load/index.js';
import type { Protocol } from '../../../policy-compiler/src/model/index.js';
import { evaluateMatrix, prepareWorld } from '../../../policy-compiler/src/semantics/index.js';
import { requirePrivileges } from '../../support/privileged.js';
import { loadCases } from '../../conformance/cases.js';
import { comparableVerdictText } from '../../support/verdicts.js';

const conformanceDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'conformance');
let prober: DatapathProber;
beforeAll(() => {
  requirePrivileges('root', 'bpffs');
  prober = DatapathProber.open();
});
afterAll(() => prober?.close());

describe('conformance worlds: datapath == reference', () => {
  it('every probe of every loadable case', () => {
    const cases = loadCases(conformanceDir);
    expect(cases.length).toBeGreaterThan(100);
    const disagreements: string[] = [];
    let checked = 0;
    let probes = 0;
    for (const c of cases) {
      const loaded = loadWorldFromTexts(
        c.files.map((file) => ({ file, text: readFileSync(file, 'utf8') })),
      );
      if (loaded.diagnostics.some((d) => d.severity === 'error')) continue; // rejected worlds have no matrix
      const result = compile(loaded.world);
      if (!result.ok) {
        disagreements.push(`${c.id}: compile failed: ${result.error.message}`);
        continue;
      }
      prober.load(result.compiled.encoded, result.compiled.meta);
      const ports = c.ports.map((p) => {
        const [proto, n] = p.split('/') as [string, string];
        return { protocol: proto.toUpperCase() as Protocol, port: Number(n) };
      });
      const ref = evaluateMatrix(prepareWorld(loaded.world), { ports, externals: c.externals });
      for (const r of ref) {
        probes++;
        const a = comparableVerdictText(r);
        const d = comparableVerdictText(prober.probe(r.probe));
        if (a !== d) {
          disagreements.push(`${c.id}:\n  reference ${a}\n  datapath  ${d}`);
          break;
        }
      }
      checked++;
    }
    expect(disagreements).toEqual([]);
    expect(checked).toBeGreaterThan(100);
    expect(probes).toBeGreaterThan(1000);
  });
});
