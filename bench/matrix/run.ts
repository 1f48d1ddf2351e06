/**
 * Matrix benchmark (issue 3): the reference evaluator over a synthetic world
 * of 500 pods and 200 policies of every kind, 5 ports. Prints one JSON object:
 * the measured run and, from the same process, the same matrix over the same
 * endpoints with no policies (the evaluator's floor), and their ratio.
 * Nothing is asserted; run: `npm run -s build && node dist/bench/matrix/run.js [pods] [policies]`.
 */
import { evaluateMatrix, prepareWorld, type World } from '../../policy-compiler/src/index.js';
import { BENCH_PORTS, syntheticWorld } from './synthetic-world.js';

interface Measured {
  readonly policies: number;
  readonly probes: number;
  readonly prepareSeconds: number;
  readonly seconds: number;
  readonly probesPerSecond: number;
  readonly allowed: number;
}

function measure(world: World): Measured {
  const t0 = process.hrtime.bigint();
  const prepared = prepareWorld(world);
  const t1 = process.hrtime.bigint();
  const verdicts = evaluateMatrix(prepared, { ports: BENCH_PORTS, externals: [] });
  const t2 = process.hrtime.bigint();
  const seconds = Number(t2 - t1) / 1e9;
  return {
    policies: world.networkPolicies.length + world.clusterPolicies.length,
    probes: verdicts.length,
    prepareSeconds: round(Number(t1 - t0) / 1e9),
    seconds: round(seconds),
    probesPerSecond: Math.round(verdicts.length / seconds),
    allowed: verdicts.filter((v) => v.verdict === 'Allow').length,
  };
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

function positiveInt(arg: string | undefined, fallback: number): number {
  if (arg === undefined) return fallback;
  const n = Number(arg);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) {
    process.stderr.write(`bench/matrix: "${arg}" is not a count (1..100000)\n`);
    process.exit(2);
  }
  return n;
}

const pods = positiveInt(process.argv[2], 500);
const policies = positiveInt(process.argv[3], 200);
const world = syntheticWorld({ pods, policies });
const empty: World = { ...world, networkPolicies: [], clusterPolicies: [] };

const baseline = measure(empty);
const run = measure(world);
process.stdout.write(
  `${JSON.stringify(
    {
      pods: world.pods.length,
      nodes: world.nodes.length,
      policies: run.policies,
      ports: BENCH_PORTS.length,
      probes: run.probes,
      allowed: run.allowed,
      prepareSeconds: run.prepareSeconds,
      seconds: run.seconds,
      probesPerSecond: run.probesPerSecond,
      baseline: {
        what: 'same endpoints and ports, no policies, same process',
        seconds: baseline.seconds,
        probesPerSecond: baseline.probesPerSecond,
      },
      slowdownVsBaseline: round(run.seconds / baseline.seconds),
    },
    null,
    2,
  )}\n`,
);
