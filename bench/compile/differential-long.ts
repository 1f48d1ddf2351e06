/**
 * Long differential run: compiled engine vs reference on many random worlds
 * (same property as test/differential, more and bigger worlds).
 *
 *   npm run -s build && node dist/bench/compile/differential-long.js --runs 100000 [--seed N] [--pods 12]
 */
import fc from 'fast-check';
import { compile } from '../../policy-compiler/src/compile/index.js';
import { compiledEngine } from '../../policy-compiler/src/simulate/index.js';
import { evaluateMatrix, prepareWorld } from '../../policy-compiler/src/semantics/index.js';
import type { DirectionVerdict, ProbeVerdict } from '../../policy-compiler/src/engine.js';
import { arbWorld, EXTERNALS, PROBE_PORTS } from '../../test/support/random-world.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}
const slim = (d: DirectionVerdict): string => JSON.stringify([d.verdict, d.decidedBy, d.staged]);
const slimProbe = (p: ProbeVerdict): string => `${p.verdict}|${slim(p.egress)}|${slim(p.ingress)}`;

const runs = Number(arg('runs', '10000'));
const seed = Number(arg('seed', String(Date.now() % 2 ** 31)));
const maxPods = Number(arg('pods', '12'));
let probes = 0;
const t0 = Date.now();
fc.assert(
  fc.property(
    arbWorld({ maxPods, maxNetworkPolicies: 5, maxClusterPolicies: 7, maxRules: 4 }),
    (world) => {
      const r = compile(world);
      if (!r.ok) throw new Error(`compile failed: ${r.error.message}`);
      const engine = compiledEngine(r.compiled.encoded, r.compiled.meta);
      for (const ref of evaluateMatrix(prepareWorld(world), {
        ports: PROBE_PORTS,
        externals: EXTERNALS,
      })) {
        probes++;
        const got = engine(ref.probe);
        if (slimProbe(got) !== slimProbe(ref))
          throw new Error(
            `disagree on ${JSON.stringify(ref.probe)}: reference ${slimProbe(ref)} compiled ${slimProbe(got)}`,
          );
      }
    },
  ),
  { seed, numRuns: runs },
);
process.stdout.write(
  `${JSON.stringify({ ok: true, runs, seed, probes, seconds: (Date.now() - t0) / 1000 })}\n`,
);
