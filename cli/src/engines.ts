/**
 * The matrix engines by name. `reference` is the semantics evaluator; the
 * compiled-table simulator (issue 4) and the real datapath (issue 5) plug in
 * here by replacing their `null` with a MatrixEngine.
 */
import {
  evaluateMatrix,
  prepareWorld,
  type EngineName,
  type ProbeVerdict,
  type World,
} from '../../policy-compiler/src/index.js';
import type { PortSpec } from './args.js';
import { CliError } from './context.js';

export interface MatrixRequest {
  readonly world: World;
  readonly ports: readonly PortSpec[];
  /** External IPs to add as `ip:<addr>` endpoints. */
  readonly externals: readonly string[];
}

/**
 * Every ordered pair of endpoints (pods, nodes, externals; from != to, pairs
 * sharing an IP family) × every port, in the order the reference engine uses.
 */
export type MatrixEngine = (request: MatrixRequest) => Promise<readonly ProbeVerdict[]>;

const reference: MatrixEngine = async ({ world, ports, externals }) =>
  evaluateMatrix(prepareWorld(world), { ports, externals });

/** The compiled-table simulator: compile, then the datapath's lookups on the encoded tables. */
const compiled: MatrixEngine = async ({ world, ports, externals }) => {
  const { compiledMatrix } = await import('../../policy-compiler/src/simulate/matrix.js');
  try {
    return compiledMatrix(world, ports, externals);
  } catch (e) {
    if (e instanceof Error && e.name === 'SimulationError') throw new CliError(e.message);
    throw e;
  }
};

/** Real BPF programs via BPF_PROG_TEST_RUN (root); the binding is loaded only when this engine runs. */
const datapath: MatrixEngine = async ({ world, ports, externals }) => {
  const { datapathWorldMatrix } = await import('../../enforcer/src/datapath/world-engine.js');
  try {
    return datapathWorldMatrix(world, ports, externals);
  } catch (e) {
    if (e instanceof Error && e.name === 'DatapathEngineError') throw new CliError(e.message);
    throw e;
  }
};

export const ENGINES: Readonly<Record<EngineName, { engine: MatrixEngine | null; issue: number }>> =
  {
    reference: { engine: reference, issue: 3 },
    compiled: { engine: compiled, issue: 4 },
    datapath: { engine: datapath, issue: 5 },
  };

export const ENGINE_NAMES = Object.keys(ENGINES) as EngineName[];

export function engineFor(name: EngineName): MatrixEngine {
  const entry = ENGINES[name];
  if (entry.engine === null) {
    throw new CliError(`engine '${name}' is not built yet (issue ${entry.issue})`);
  }
  return entry.engine;
}
