/** A small attribution context shared by the flow tests: two pods, a CNP deny rule and an NP allow. */
import type { RuleRef } from '../../policy-compiler/src/engine.js';
import { decodeEvent } from '../../enforcer/src/flows/event-decode.js';
import {
  toFlowRecord,
  type EndpointInfo,
  type FlowContext,
  type FlowRecord,
  type PolicyRef,
} from '../../enforcer/src/flows/record.js';
import { buildEvent } from './event-builder.js';

export const CNP_DENY: RuleRef = {
  kind: 'ClusterNetworkPolicy',
  cluster: 'east',
  namespace: null,
  name: 'deny-db',
  revision: '3',
  tier: 'Admin',
  priority: 10,
  direction: 'Egress',
  ruleIndex: 1,
  ruleName: 'no-db',
};
export const NP_ALLOW: RuleRef = {
  kind: 'NetworkPolicy',
  cluster: 'east',
  namespace: 'shop',
  name: 'allow-web',
  revision: '7',
  tier: 'NetworkPolicy',
  priority: null,
  direction: 'Ingress',
  ruleIndex: 0,
  ruleName: '',
};
export const MNP_AUDIT: RuleRef = {
  kind: 'MeshNetworkPolicy',
  cluster: null,
  namespace: null,
  name: 'audit-lockdown',
  revision: '1',
  tier: 'Admin',
  priority: 5,
  direction: 'Ingress',
  ruleIndex: 0,
  ruleName: 'deny-all',
};

export const WEB: EndpointInfo = {
  id: 'east/shop/web-1',
  cluster: 'east',
  namespace: 'shop',
  pod: 'web-1',
  uid: '1111-2222',
  labels: { app: 'web', tier: 'front' },
};
export const DB: EndpointInfo = {
  id: 'east/shop/db-0',
  cluster: 'east',
  namespace: 'shop',
  pod: 'db-0',
  labels: { app: 'db' },
};
export const ISOLATING: PolicyRef = {
  kind: 'NetworkPolicy',
  namespace: 'shop',
  name: 'db-isolate',
  revision: '2',
};

export function makeContext(over: Partial<FlowContext> = {}): FlowContext {
  const cookies = new Map<number, RuleRef>([
    [11, CNP_DENY],
    [12, NP_ALLOW],
    [13, MNP_AUDIT],
  ]);
  const eps = new Map([
    ['10.0.0.1', WEB],
    ['10.0.0.2', DB],
  ]);
  return {
    nodeName: 'east/node-a',
    cluster: 'east',
    rule: (c) => cookies.get(c),
    endpoint: (ip) => eps.get(ip),
    isolation: (id, dir) => (id === DB.id && dir === 'INGRESS' ? [ISOLATING] : []),
    clockOffsetNs: 1_700_000_000_000_000_000n,
    ...over,
  };
}

let sampleSeq = 0;
/** A deny (the CNP rule, cookie 11) or allow (the NP rule, cookie 12) record, each with a new timestamp. */
export function sampleFlow(deny: boolean, dport = 80): FlowRecord {
  const r = decodeEvent(
    buildEvent({
      tsNs: BigInt(++sampleSeq),
      type: deny ? 1 : 2,
      verdict: deny ? 0 : 1,
      cookie: deny ? 11 : 12,
      dport,
    }),
  );
  if (!r.ok) throw new Error(r.error);
  return toFlowRecord(r.event, makeContext());
}
