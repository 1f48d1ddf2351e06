/**
 * The compiler's output as the datapath loads it: map entries already encoded
 * byte for byte as the structs in bpf/include/palisade.h. The compiler does not
 * know interface indexes, so endpoints are named by id; the enforcer keys them
 * by the ifindex of each local pod's host-side interface.
 */
import type { EndpointId } from './model/endpoint.js';
import type { RuleRef } from './engine.js';

export interface MapEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** What goes into `endpoints` (struct pal_endpoint_value) once an ifindex is known. */
export interface CompiledEndpoint {
  readonly endpoint: EndpointId;
  readonly identity: number;
  /** Index into the outer policy array (PAL_MAX_TABLES). */
  readonly egressTable: number;
  readonly ingressTable: number;
  /** PAL_EP_F_* */
  readonly flags: number;
  /** Number of the pod's node (pal_endpoint_value.node_id; own-node exemption); 0 = none. */
  readonly nodeId: number;
}

export interface CompiledTable {
  /** Index in the outer policy array. */
  readonly table: number;
  /** struct pal_policy_key → struct pal_policy_value, sorted by key bytes. */
  readonly entries: readonly MapEntry[];
}

export interface EncodedTables {
  /** struct pal_ipcache_key → struct pal_ipcache_value, sorted by key bytes. */
  readonly ipcache: readonly MapEntry[];
  readonly endpoints: readonly CompiledEndpoint[];
  readonly tables: readonly CompiledTable[];
  /** cookie (index of the per-rule counter) → the rule; cookie 0 = default verdict. */
  readonly cookies: ReadonlyMap<number, RuleRef>;
}

/** Minimal change between two EncodedTables, what the enforcer applies. */
export interface EncodedDelta {
  readonly ipcache: {
    readonly upsert: readonly MapEntry[];
    readonly remove: readonly Uint8Array[];
  };
  readonly endpoints: {
    readonly upsert: readonly CompiledEndpoint[];
    readonly remove: readonly EndpointId[];
  };
  readonly tables: {
    /** Tables whose content changed otherwise are replaced whole (new inner map, then swap). */
    readonly replace: readonly CompiledTable[];
    /** Tables that only gained identities new to the compile or lost identities gone from it. */
    readonly patch: readonly TablePatch[];
    readonly remove: readonly number[];
  };
}

/**
 * A table changed key by key, in place. It only inserts the entries of
 * identities that no address or endpoint had before this compile, and only
 * removes the keys of identities that none has after it; no existing key
 * changes its value. Applied in make-before-break order (inserts before the
 * ipcache and endpoint changes, removals after them), no packet ever looks up
 * a half-patched identity: see docs/datapath.md "Applying a delta".
 */
export interface TablePatch {
  /** The table after the patch, whole: for capacity checks and for a datapath that must write it afresh. */
  readonly table: CompiledTable;
  /** Entries to add, sorted by key bytes; none of their keys is in the table before. */
  readonly insert: readonly MapEntry[];
  /** Keys to delete, sorted; every one is in the table before. */
  readonly remove: readonly Uint8Array[];
}
