/**
 * Builds the FlowContext a record needs from what the agent already has: the
 * World (endpoints and their labels, NetworkPolicies for default-deny
 * attribution) and the compiler's cookie registry.
 */
import type { RuleRef } from '../../../policy-compiler/src/engine.js';
import { selectorMatches } from '../../../policy-compiler/src/model/labels.js';
import type { World } from '../../../policy-compiler/src/model/world.js';
import { nodeId, podId } from '../../../policy-compiler/src/model/endpoint.js';
import type { EndpointInfo, FlowContext, PolicyRef } from './record.js';

export interface AttributionOptions {
  readonly nodeName: string;
  readonly cluster: string;
  readonly clockOffsetNs: bigint;
}

/** Canonical text of an address as the decoder prints it (lowercase, compressed v6). */
const canon = (ip: string): string => ip.toLowerCase();

export function attributionFromWorld(
  world: World,
  cookies: ReadonlyMap<number, RuleRef>,
  opts: AttributionOptions,
): FlowContext {
  const byIp = new Map<string, EndpointInfo>();
  // Nodes first so a hostNetwork pod's address (shared with its node) names the pod.
  for (const n of world.nodes) {
    const info: EndpointInfo = {
      id: nodeId(n),
      cluster: n.cluster,
      namespace: '',
      pod: '',
      labels: n.labels,
    };
    for (const ip of n.ips) byIp.set(canon(ip), info);
  }
  const isolation = new Map<string, { INGRESS: PolicyRef[]; EGRESS: PolicyRef[] }>();
  for (const p of world.pods) {
    const id = podId(p);
    const info: EndpointInfo = {
      id,
      cluster: p.cluster,
      namespace: p.namespace,
      pod: p.name,
      ...(p.uid ? { uid: p.uid } : {}),
      labels: p.labels,
    };
    for (const ip of p.ips) byIp.set(canon(ip), info);
    const iso = { INGRESS: [] as PolicyRef[], EGRESS: [] as PolicyRef[] };
    for (const np of world.networkPolicies) {
      if (np.cluster !== p.cluster || np.namespace !== p.namespace) continue;
      if (!selectorMatches(np.podSelector, p.labels)) continue;
      const ref = {
        kind: 'NetworkPolicy',
        namespace: np.namespace,
        name: np.name,
        revision: np.revision,
      };
      if (np.policyTypes.ingress) iso.INGRESS.push(ref);
      if (np.policyTypes.egress) iso.EGRESS.push(ref);
    }
    isolation.set(id, iso);
  }
  return {
    nodeName: opts.nodeName,
    cluster: opts.cluster,
    clockOffsetNs: opts.clockOffsetNs,
    rule: (c) => cookies.get(c),
    endpoint: (ip) => byIp.get(canon(ip)),
    isolation: (id, dir) => isolation.get(id)?.[dir] ?? [],
  };
}
