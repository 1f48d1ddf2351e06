/**
 * The ipcache: IP prefix → (identity, namespace identity, CIDR identity, node
 * number), longest prefix wins. Policy prefixes carry identity WORLD and their
 * own CIDR identity; pod and node addresses (/32, /128) carry all four
 * (overriding a policy prefix of the same length).
 */
import {
  decodeIpcacheKey,
  decodeIpcacheValue,
  encodeIpcacheKey,
  encodeIpcacheValue,
  compareBytes,
} from '../encode/codec.js';
import { PAL } from '../encode/layout.js';
import type { MapEntry } from '../compiled.js';
import { addressBytes, bytesToAddress, mask, V4_MAPPED_BASE } from './addr.js';
import type { IdentityResult } from './identities.js';

export interface IpcacheRecord {
  readonly net: bigint;
  readonly len: number;
  readonly identity: number;
  readonly nsIdentity: number;
  readonly cidrIdentity: number;
  readonly nodeId: number;
  readonly flags: number;
}

export function buildIpcache(ids: IdentityResult, localCluster: string | null): IpcacheRecord[] {
  const m = new Map<string, IpcacheRecord>();
  const put = (r: IpcacheRecord): void => {
    m.set(`${r.len}/${r.net}`, r);
  };
  const num = (key: string | null): number =>
    key === null ? 0 : (ids.identities.get(key)?.number ?? 0);
  if (ids.v4SpaceWorld)
    put({
      net: V4_MAPPED_BASE,
      len: 96,
      identity: PAL.ID_WORLD,
      nsIdentity: 0,
      cidrIdentity: 0,
      nodeId: 0,
      flags: 0,
    });
  for (const [text, key] of ids.prefixKeys) {
    const p = ids.prefixes.get(text);
    if (p === undefined) continue;
    put({
      net: p.net,
      len: p.len,
      identity: PAL.ID_WORLD,
      nsIdentity: 0,
      cidrIdentity: num(key),
      nodeId: 0,
      flags: 0,
    });
  }
  for (const a of ids.addresses) {
    const id = ids.identities.get(a.key);
    if (id === undefined) continue;
    let flags = a.kind === 'node' ? PAL.IPC_F_NODE : 0;
    if (localCluster !== null && id.cluster !== localCluster) flags |= PAL.IPC_F_REMOTE_CLUSTER;
    put({
      net: a.n,
      len: 128,
      identity: id.number,
      nsIdentity: num(a.nsKey),
      cidrIdentity: num(a.cidrKey),
      nodeId: a.kind === 'node' ? (ids.nodeNumbers.get(a.owner) ?? 0) : 0,
      flags,
    });
  }
  return [...m.values()];
}

export function encodeIpcache(records: readonly IpcacheRecord[]): MapEntry[] {
  return records
    .map((r) => ({
      key: encodeIpcacheKey({ prefixlen: r.len, addr: addressBytes(r.net) }),
      value: encodeIpcacheValue(r),
    }))
    .sort((a, b) => compareBytes(a.key, b.key));
}

/** Longest-prefix lookup over ipcache records. */
export class IpcacheLpm {
  private readonly byLen = new Map<number, Map<bigint, IpcacheRecord>>();
  private readonly lens: number[];
  constructor(records: Iterable<IpcacheRecord>) {
    for (const r of records) {
      let t = this.byLen.get(r.len);
      if (t === undefined) this.byLen.set(r.len, (t = new Map()));
      t.set(r.net, r);
    }
    this.lens = [...this.byLen.keys()].sort((a, b) => b - a);
  }
  static fromEntries(entries: readonly MapEntry[]): IpcacheLpm {
    return new IpcacheLpm(
      entries.map((e) => {
        const k = decodeIpcacheKey(e.key);
        const v = decodeIpcacheValue(e.value);
        return {
          net: bytesToAddress(k.addr),
          len: k.prefixlen,
          identity: v.identity,
          nsIdentity: v.nsIdentity,
          cidrIdentity: v.cidrIdentity,
          nodeId: v.nodeId,
          flags: v.flags,
        };
      }),
    );
  }
  /** The record of the longest prefix containing n; null = no entry (WORLD). */
  lookup(n: bigint): IpcacheRecord | null {
    for (const len of this.lens) {
      const r = this.byLen.get(len)?.get(n & mask(len));
      if (r !== undefined) return r;
    }
    return null;
  }
}
