/**
 * `palisade matrix --engine datapath`: compile the world, load the tables
 * into private maps and answer every probe of the matrix with the real
 * programs (BPF_PROG_TEST_RUN). Needs root (CAP_BPF, CAP_NET_ADMIN).
 */
import { compile } from '../../../policy-compiler/src/compile/compile.js';
import type { ProbeVerdict } from '../../../policy-compiler/src/engine.js';
import type { Protocol, World } from '../../../policy-compiler/src/model/index.js';
import { endpointsOf, prepareWorld } from '../../../policy-compiler/src/semantics/index.js';
import { datapathMatrix, DatapathEngineError } from './engine.js';

export function datapathWorldMatrix(
  world: World,
  ports: readonly { readonly protocol: Protocol; readonly port: number }[],
  externals: readonly string[],
): ProbeVerdict[] {
  if (process.getuid?.() !== 0) {
    throw new DatapathEngineError(
      'the datapath engine runs the BPF programs with BPF_PROG_TEST_RUN: run it as root',
    );
  }
  const result = compile(world);
  if (!result.ok) throw new DatapathEngineError(result.error.message);
  const endpoints = endpointsOf(prepareWorld(world), externals);
  return datapathMatrix({
    encoded: result.compiled.encoded,
    meta: result.compiled.meta,
    endpoints,
    ports,
  });
}
