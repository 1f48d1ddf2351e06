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
  EP_F_POLICY_READY,
  ID_ANY,
  ipcacheKey,
  ipcacheValue,
  policyKey,
  policyValue,
  type PolicyKeySpec,
  type PolicyValue,
} from '../../../enforcer/src/datapath/structs.js';

export const ALLOW = 1 as const;
export const DENY = 0 as const;

export function rule(k: PolicyKeySpec, v: PolicyValue): MapEntry {
  return { key: policyKey(k), value: policyValue(v) };
}

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
  flags = EP_F_POLICY_READY,
): CompiledEndpoint {
  return { endpoint: id, identity, egressTable, ingressTable, flags };
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
