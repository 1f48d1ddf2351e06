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
  readonly flags: number;
}
export interface PolicyKey {
  readonly prefixlen: number;
  readonly identity: number;
  readonly protocol: number;
  readonly port: number;
}
export interface PolicyValue {
  readonly verdict: number;
  readonly stagedVerdict: number;
  readonly flags: number;
  readonly precedence: number;
  readonly cookie: number;
  readonly stagedCookie: number;
}
export interface EndpointValue {
  readonly identity: number;
  readonly egressTable: number;
  readonly ingressTable: number;
  readonly flags: number;
}

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
  v.setUint32(L.pal_ipcache_value.fields.identity.offset, x.identity, true);
  v.setUint32(L.pal_ipcache_value.fields.flags.offset, x.flags, true);
  return b;
}
export function decodeIpcacheValue(b: Uint8Array): IpcacheValue {
  const v = need(b, L.pal_ipcache_value.size, 'pal_ipcache_value');
  return {
    identity: v.getUint32(L.pal_ipcache_value.fields.identity.offset, true),
    flags: v.getUint32(L.pal_ipcache_value.fields.flags.offset, true),
  };
}

export function encodePolicyKey(k: PolicyKey): Uint8Array {
  const f = L.pal_policy_key.fields;
  const b = new Uint8Array(L.pal_policy_key.size);
  const v = view(b);
  v.setUint32(f.prefixlen.offset, k.prefixlen, true);
  v.setUint32(f.identity_be.offset, k.identity, false);
  v.setUint8(f.protocol.offset, k.protocol);
  v.setUint8(f.pad.offset, 0);
  v.setUint16(f.port_be.offset, k.port, false);
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

export function encodePolicyValue(x: PolicyValue): Uint8Array {
  const f = L.pal_policy_value.fields;
  const b = new Uint8Array(L.pal_policy_value.size);
  const v = view(b);
  v.setUint8(f.verdict.offset, x.verdict);
  v.setUint8(f.staged_verdict.offset, x.stagedVerdict);
  v.setUint8(f.flags.offset, x.flags);
  v.setUint8(f.pad.offset, 0);
  v.setUint32(f.precedence.offset, x.precedence, true);
  v.setUint32(f.cookie.offset, x.cookie, true);
  v.setUint32(f.staged_cookie.offset, x.stagedCookie, true);
  return b;
}
export function decodePolicyValue(b: Uint8Array): PolicyValue {
  const f = L.pal_policy_value.fields;
  const v = need(b, L.pal_policy_value.size, 'pal_policy_value');
  return {
    verdict: v.getUint8(f.verdict.offset),
    stagedVerdict: v.getUint8(f.staged_verdict.offset),
    flags: v.getUint8(f.flags.offset),
    precedence: v.getUint32(f.precedence.offset, true),
    cookie: v.getUint32(f.cookie.offset, true),
    stagedCookie: v.getUint32(f.staged_cookie.offset, true),
  };
}

export function encodeEndpointValue(x: EndpointValue): Uint8Array {
  const f = L.pal_endpoint_value.fields;
  const b = new Uint8Array(L.pal_endpoint_value.size);
  const v = view(b);
  v.setUint32(f.identity.offset, x.identity, true);
  v.setUint32(f.egress_table.offset, x.egressTable, true);
  v.setUint32(f.ingress_table.offset, x.ingressTable, true);
  v.setUint32(f.flags.offset, x.flags, true);
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
