/**
 * Encoders and decoders for the map keys and values, byte for byte as the C
 * structs (offsets from LAYOUT). Host byte order is little endian on every
 * platform the datapath targets (x86_64, arm64); `_be` fields are big endian.
 */
import { LAYOUT } from './layout.js';

const L = LAYOUT;

export interface IpcacheKey {
  /** Bits of `addr` that count (IPv4 prefixes are 96 + n, IPv4-mapped). */
  readonly prefixlen: number;
  /** 16 bytes, network order. */
  readonly addr: Uint8Array;
}
export interface IpcacheValue {
  readonly identity: number;
  readonly nsIdentity: number;
  readonly cidrIdentity: number;
  readonly nodeId: number;
  readonly flags: number;
}
export interface PolicyKey {
  readonly prefixlen: number;
  readonly identity: number;
  readonly protocol: number;
  readonly port: number;
}
/** struct pal_tier_match: the first rule of one tier that matched (rank 0 = none). */
export interface TierMatch {
  readonly rank: number;
  readonly cookie: number;
  readonly action: number;
  readonly flags: number;
}
/** struct pal_policy_value: per tier (PAL_TIER_*), enforced and staged. */
export interface PolicyValue {
  readonly enforced: readonly [TierMatch, TierMatch, TierMatch];
  readonly staged: readonly [TierMatch, TierMatch, TierMatch];
}
export interface EndpointValue {
  readonly identity: number;
  readonly egressTable: number;
  readonly ingressTable: number;
  readonly flags: number;
  readonly nodeId: number;
}

export const NO_MATCH: TierMatch = Object.freeze({ rank: 0, cookie: 0, action: 0, flags: 0 });

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

function need(b: Uint8Array, size: number, what: string): DataView {
  if (b.byteLength !== size)
    throw new Error(`${what}: expected ${size} bytes, got ${b.byteLength}`);
  return view(b);
}

export function encodeIpcacheKey(k: IpcacheKey): Uint8Array {
  const b = new Uint8Array(L.pal_ipcache_key.size);
  view(b).setUint32(L.pal_ipcache_key.fields.prefixlen.offset, k.prefixlen, true);
  b.set(k.addr, L.pal_ipcache_key.fields.addr.offset);
  return b;
}
export function decodeIpcacheKey(b: Uint8Array): IpcacheKey {
  const v = need(b, L.pal_ipcache_key.size, 'pal_ipcache_key');
  const o = L.pal_ipcache_key.fields.addr.offset;
  return {
    prefixlen: v.getUint32(L.pal_ipcache_key.fields.prefixlen.offset, true),
    addr: b.slice(o, o + 16),
  };
}

export function encodeIpcacheValue(x: IpcacheValue): Uint8Array {
  const b = new Uint8Array(L.pal_ipcache_value.size);
  const v = view(b);
  const f = L.pal_ipcache_value.fields;
  v.setUint32(f.identity.offset, x.identity, true);
  v.setUint32(f.ns_identity.offset, x.nsIdentity, true);
  v.setUint32(f.cidr_identity.offset, x.cidrIdentity, true);
  v.setUint32(f.node_id.offset, x.nodeId, true);
  v.setUint32(f.flags.offset, x.flags, true);
  return b;
}
export function decodeIpcacheValue(b: Uint8Array): IpcacheValue {
  const v = need(b, L.pal_ipcache_value.size, 'pal_ipcache_value');
  const f = L.pal_ipcache_value.fields;
  return {
    identity: v.getUint32(f.identity.offset, true),
    nsIdentity: v.getUint32(f.ns_identity.offset, true),
    cidrIdentity: v.getUint32(f.cidr_identity.offset, true),
    nodeId: v.getUint32(f.node_id.offset, true),
    flags: v.getUint32(f.flags.offset, true),
  };
}

export function encodePolicyKey(k: PolicyKey): Uint8Array {
  const f = L.pal_policy_key.fields;
  const b = new Uint8Array(L.pal_policy_key.size);
  const v = view(b);
  v.setUint32(f.prefixlen.offset, k.prefixlen, true);
  v.setUint32(f.identity_be.offset, k.identity, false);
  v.setUint8(f.protocol.offset, k.protocol);
  v.setUint16(f.port_be.offset, k.port, false);
  v.setUint8(f.pad.offset, 0);
  return b;
}
export function decodePolicyKey(b: Uint8Array): PolicyKey {
  const f = L.pal_policy_key.fields;
  const v = need(b, L.pal_policy_key.size, 'pal_policy_key');
  return {
    prefixlen: v.getUint32(f.prefixlen.offset, true),
    identity: v.getUint32(f.identity_be.offset, false),
    protocol: v.getUint8(f.protocol.offset),
    port: v.getUint16(f.port_be.offset, false),
  };
}

const TM = L.pal_tier_match;

function putTier(v: DataView, at: number, t: TierMatch): void {
  v.setUint32(at + TM.fields.rank.offset, t.rank, true);
  v.setUint32(at + TM.fields.cookie.offset, t.cookie, true);
  v.setUint8(at + TM.fields.action.offset, t.action);
  v.setUint8(at + TM.fields.flags.offset, t.flags);
}
function getTier(v: DataView, at: number): TierMatch {
  return {
    rank: v.getUint32(at + TM.fields.rank.offset, true),
    cookie: v.getUint32(at + TM.fields.cookie.offset, true),
    action: v.getUint8(at + TM.fields.action.offset),
    flags: v.getUint8(at + TM.fields.flags.offset),
  };
}

export function encodePolicyValue(x: PolicyValue): Uint8Array {
  const f = L.pal_policy_value.fields;
  const b = new Uint8Array(L.pal_policy_value.size);
  const v = view(b);
  for (let t = 0; t < 3; t++) {
    putTier(v, f.enforced.offset + t * TM.size, x.enforced[t] as TierMatch);
    putTier(v, f.staged.offset + t * TM.size, x.staged[t] as TierMatch);
  }
  return b;
}
export function decodePolicyValue(b: Uint8Array): PolicyValue {
  const f = L.pal_policy_value.fields;
  const v = need(b, L.pal_policy_value.size, 'pal_policy_value');
  const tiers = (o: number): [TierMatch, TierMatch, TierMatch] => [
    getTier(v, o),
    getTier(v, o + TM.size),
    getTier(v, o + 2 * TM.size),
  ];
  return { enforced: tiers(f.enforced.offset), staged: tiers(f.staged.offset) };
}

export function encodeEndpointValue(x: EndpointValue): Uint8Array {
  const f = L.pal_endpoint_value.fields;
  const b = new Uint8Array(L.pal_endpoint_value.size);
  const v = view(b);
  v.setUint32(f.identity.offset, x.identity, true);
  v.setUint32(f.egress_table.offset, x.egressTable, true);
  v.setUint32(f.ingress_table.offset, x.ingressTable, true);
  v.setUint32(f.flags.offset, x.flags, true);
  v.setUint32(f.node_id.offset, x.nodeId, true);
  return b;
}
export function decodeEndpointValue(b: Uint8Array): EndpointValue {
  const f = L.pal_endpoint_value.fields;
  const v = need(b, L.pal_endpoint_value.size, 'pal_endpoint_value');
  return {
    identity: v.getUint32(f.identity.offset, true),
    egressTable: v.getUint32(f.egress_table.offset, true),
    ingressTable: v.getUint32(f.ingress_table.offset, true),
    flags: v.getUint32(f.flags.offset, true),
    nodeId: v.getUint32(f.node_id.offset, true),
  };
}

/** Byte order of map entries in EncodedTables (and of delta lists). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
