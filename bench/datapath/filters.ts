/**
 * The filters the benchmark compares, each with N rules that the measured
 * traffic (pod 0 -> pod 1) walks past: iptables (n-1 non-matching rules,
 * the matching ACCEPT last), an nftables set of n addresses, and Palisade
 * tables of n entries for the enforced directions plus n ipcache entries.
 * Palisade's tables go through the public encoders (structs.ts) and
 * Datapath.applyFull, like any compiled world.
 *
 * Switching iptables or nftables off is `nft flush ruleset` in the node
 * namespace (only the bench's rules live there): `iptables -F` would leave
 * iptables-nft's empty base chains hooked, ~0.1 µs per forwarded packet that
 * every later run, no-filter included, would pay.
 */
import {
  ACTION,
  ID_ANY,
  ipcacheKey,
  ipcacheValue,
  policyKey,
  policyValue,
} from '../../enforcer/src/datapath/structs.js';
import type { CompiledTable, EncodedTables, MapEntry } from '../../policy-compiler/src/compiled.js';
import type { Pod } from './topology.js';

const ID0 = 300;
const ID1 = 301;
/** Cookie of the allow entry the measured traffic hits. */
export const ALLOW_COOKIE = 1;

/** Filler peer i: an address no traffic uses, 10.200.0.0/14. */
export const fillerIp = (i: number): string => `10.${200 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

export function palisadeTables(n: number, pods: readonly Pod[]): EncodedTables {
  const fillers = (peerAllowed: number): MapEntry[] => {
    const entries: MapEntry[] = [];
    for (let i = 0; i < n - 1; i++) {
      entries.push({
        key: policyKey({ identity: 10_000 + i, protocol: 6, port: 9 }),
        value: policyValue({ admin: { rank: 1, cookie: 2, action: ACTION.DENY, flags: 8 } }),
      });
    }
    entries.push({
      key: policyKey({ identity: peerAllowed }),
      value: policyValue({ admin: { rank: 1, cookie: ALLOW_COOKIE, action: ACTION.ACCEPT } }),
    });
    return entries;
  };
  const allowAll = (t: number): CompiledTable => ({
    table: t,
    entries: [
      {
        key: policyKey({ identity: ID_ANY }),
        value: policyValue({ admin: { rank: 2, cookie: 0, action: ACTION.ACCEPT } }),
      },
    ],
  });
  const ipcache: MapEntry[] = [];
  for (let i = 0; i < n - 1; i++)
    ipcache.push({ key: ipcacheKey(fillerIp(i)), value: ipcacheValue(10_000 + i) });
  const [p0, p1] = [pods[0]!, pods[1]!];
  ipcache.push(
    { key: ipcacheKey(p0.ip4), value: ipcacheValue(ID0) },
    { key: ipcacheKey(p1.ip4), value: ipcacheValue(ID1) },
  );
  return {
    ipcache,
    endpoints: [
      { endpoint: 'p0', identity: ID0, egressTable: 1, ingressTable: 2, flags: 13, nodeId: 0 },
      { endpoint: 'p1', identity: ID1, egressTable: 3, ingressTable: 4, flags: 13, nodeId: 0 },
    ],
    tables: [
      { table: 1, entries: fillers(ID1) },
      allowAll(2),
      allowAll(3),
      { table: 4, entries: fillers(ID0) },
    ],
    cookies: new Map(),
  };
}

/** iptables-restore input: FORWARD with n-1 rules that do not match, then the ACCEPT that does. */
export function iptablesRules(n: number): string {
  const lines = ['*filter', ':FORWARD ACCEPT [0:0]'];
  for (let i = 0; i < n - 1; i++)
    lines.push(`-A FORWARD -s ${fillerIp(i)}/32 -p tcp --dport 9 -j DROP`);
  lines.push('-A FORWARD -j ACCEPT', 'COMMIT', '');
  return lines.join('\n');
}

/** nft -f input: one set of n addresses looked up per forwarded packet. */
export function nftRules(n: number): string {
  const elems: string[] = [];
  for (let i = 0; i < n; i++) elems.push(fillerIp(i));
  return (
    `table inet palbench {\n set peers { type ipv4_addr; elements = { ${elems.join(', ')} } }\n` +
    ` chain forward_filter { type filter hook forward priority 0; policy accept; ip saddr @peers drop; }\n}\n`
  );
}
