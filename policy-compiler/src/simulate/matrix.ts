/**
 * A whole matrix through the compiled engine: compile, then every ordered
 * pair of endpoints (pods, then nodes, in world order, then the external
 * addresses, deduplicated; only those with an address; pairs sharing an IP
 * family) × every port — the order the reference engine uses.
 */
import type { ProbeVerdict } from '../engine.js';
import { ipId, nodeId, podId } from '../model/endpoint.js';
import type { Protocol, World } from '../model/world.js';
import { parseAddress } from '../compile/addr.js';
import { compile, type CompileOptions } from '../compile/compile.js';
import { compiledEngine, SimulationError } from './engine.js';

export function compiledMatrix(
  world: World,
  ports: readonly { readonly protocol: Protocol; readonly port: number }[],
  externals: readonly string[],
  options: CompileOptions = {},
): ProbeVerdict[] {
  const r = compile(world, options);
  if (!r.ok) throw new SimulationError(`compile failed: ${r.error.message}`);
  const { encoded, meta } = r.compiled;
  const engine = compiledEngine(encoded, meta);
  const ids: { id: string; v4: boolean; v6: boolean }[] = [];
  for (const p of world.pods) {
    const a = meta.endpoints.get(podId(p));
    if (a !== undefined && (a.v4 !== null || a.v6 !== null))
      ids.push({ id: podId(p), v4: a.v4 !== null, v6: a.v6 !== null });
  }
  for (const n of world.nodes) {
    const a = meta.endpoints.get(nodeId(n));
    if (a !== undefined && (a.v4 !== null || a.v6 !== null))
      ids.push({ id: nodeId(n), v4: a.v4 !== null, v6: a.v6 !== null });
  }
  const seen = new Set<string>();
  for (const e of externals) {
    let a;
    try {
      a = parseAddress(e);
    } catch (err) {
      throw new SimulationError(`external ${JSON.stringify(e)}: ${(err as Error).message}`);
    }
    const k = `${a.family}:${a.n}`;
    if (seen.has(k)) continue;
    seen.add(k);
    ids.push({ id: ipId(e), v4: a.family === 4, v6: a.family === 6 });
  }
  const out: ProbeVerdict[] = [];
  for (const from of ids) {
    for (const to of ids) {
      if (from === to) continue;
      if (!((from.v4 && to.v4) || (from.v6 && to.v6))) continue;
      for (const { protocol, port } of ports)
        out.push(engine({ from: from.id, to: to.id, protocol, port }));
    }
  }
  return out;
}
