/**
 * Hand-encoded compiled tables for datapath tests (the compiler's own
 * encoder is exercised by the differential test). Table numbers and
 * identities are arbitrary but stable.
 */
import type {
  CompiledEndpoint,
  CompiledTable,
  EncodedTables,
  MapEntry,
} from '../../../policy-compiler/src/compiled.js';
import {
  ACTION,
  EP_F_EGRESS_ISOLATED,
  EP_F_INGRESS_ISOLATED,
  EP_F_POLICY_READY,
  ID_ANY,
  ipcacheKey,
  ipcacheValue,
  policyKey,
  policyValue,
  type PolicyKeySpec,
  type TierMatchSpec,
} from '../../../enforcer/src/datapath/structs.js';

export const ALLOW = 1 as const;
export const DENY = 0 as const;

/**
 * A hand-made rule as one decision: verdict and cookie, with `precedence`
 * ordering it against the other lookups' entries (higher = earlier rule).
 * Encoded as an Admin-tier match (Accept/Deny) of rank 1,000,000 −
 * precedence, so the lowest rank (highest precedence) wins across the
 * identity and ANY lookups; `staged` (1 deny, 2 allow) gives a different
 * staged Admin match (the endpoint needs an *_AUDIT flag to report it).
 * Endpoints of these tests are isolated (ENDPOINT_FLAGS), so no match = deny.
 */
export interface Decision {
  readonly verdict: 0 | 1;
  readonly precedence: number;
  readonly cookie: number;
  readonly flags?: number;
  readonly staged?: 0 | 1 | 2;
  readonly stagedCookie?: number;
}

export function rule(k: PolicyKeySpec, v: Decision): MapEntry {
  const rank = 1_000_000 - v.precedence;
  const admin: TierMatchSpec = {
    rank,
    cookie: v.cookie,
    action: v.verdict === ALLOW ? ACTION.ACCEPT : ACTION.DENY,
    flags: v.flags ?? 0,
  };
  const staged: TierMatchSpec =
    v.staged === undefined || v.staged === 0
      ? admin
      : {
          rank,
          cookie: v.stagedCookie ?? 0,
          action: v.staged === 2 ? ACTION.ACCEPT : ACTION.DENY,
          flags: 0,
        };
  return { key: policyKey(k), value: policyValue({ admin, staged: { admin: staged } }) };
}

/** Isolated both ways: a packet no rule matches is denied (cookie 0). */
export const ENDPOINT_FLAGS = EP_F_POLICY_READY | EP_F_EGRESS_ISOLATED | EP_F_INGRESS_ISOLATED;

export function table(n: number, entries: MapEntry[]): CompiledTable {
  return { table: n, entries: [...entries].sort((a, b) => Buffer.compare(a.key, b.key)) };
}

export function ipc(ip: string, identity: number, len?: number, flags = 0): MapEntry {
  return { key: ipcacheKey(ip, len), value: ipcacheValue(identity, flags) };
}

export function endpoint(
  id: string,
  identity: number,
  egressTable: number,
  ingressTable: number,
  flags = ENDPOINT_FLAGS,
  nodeId = 0,
): CompiledEndpoint {
  return { endpoint: id, identity, egressTable, ingressTable, flags, nodeId };
}

export function tables(parts: Partial<EncodedTables>): EncodedTables {
  return {
    ipcache: parts.ipcache ?? [],
    endpoints: parts.endpoints ?? [],
    tables: parts.tables ?? [],
    cookies: parts.cookies ?? new Map(),
  };
}

/** Allow everything (the Kubernetes default when no policy selects a pod). */
export const allowAll = (n: number, cookie = 0): CompiledTable =>
  table(n, [rule({ identity: ID_ANY }, { verdict: ALLOW, precedence: 1, cookie })]);
