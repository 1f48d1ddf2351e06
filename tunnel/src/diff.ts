/**
 * From what a device is to what the plan says (pure). Changes are expressed
 * per peer with update_only / replace_allowed_ips, so an unchanged peer is
 * never touched and a changed one keeps its session: nothing is torn down.
 */
import { parsePrefix } from './cidr.js';
import { publicKeyOf } from './keys.js';
import type { DevicePlan, RoutePlan } from './plan.js';
import type { DeviceConfig, DeviceState, PeerConfig } from './uapi-protocol.js';

function canonicalSet(list: readonly string[]): string {
  return [...new Set(list.map((c) => parsePrefix(c).text))].sort().join(',');
}

/** The one `set` that brings `cur` to `want`, or null when nothing changes. */
export function diffDevice(cur: DeviceState, want: DevicePlan): DeviceConfig | null {
  const peers: PeerConfig[] = [];
  const wantKeys = new Set(want.peers.map((p) => p.publicKey));
  for (const p of cur.peers)
    if (!wantKeys.has(p.publicKey)) peers.push({ publicKey: p.publicKey, remove: true });
  for (const w of want.peers) {
    const c = cur.peers.find((p) => p.publicKey === w.publicKey);
    if (!c) {
      peers.push({
        publicKey: w.publicKey,
        presharedKey: w.presharedKey,
        endpoint: w.endpoint,
        persistentKeepalive: w.keepaliveSec,
        replaceAllowedIPs: true,
        allowedIPs: w.allowedIPs,
      });
      continue;
    }
    const change: { -readonly [K in keyof PeerConfig]: PeerConfig[K] } = {
      publicKey: w.publicKey,
      updateOnly: true,
    };
    let changed = false;
    if (c.endpoint !== w.endpoint) {
      change.endpoint = w.endpoint;
      changed = true;
    }
    if (c.persistentKeepalive !== w.keepaliveSec) {
      change.persistentKeepalive = w.keepaliveSec;
      changed = true;
    }
    if (!c.hasPresharedKey) {
      change.presharedKey = w.presharedKey;
      changed = true;
    }
    if (canonicalSet(c.allowedIPs) !== canonicalSet(w.allowedIPs)) {
      change.replaceAllowedIPs = true;
      change.allowedIPs = w.allowedIPs;
      changed = true;
    }
    if (changed) peers.push(change);
  }
  const keyOk = cur.privateKey !== null && publicKeyOf(cur.privateKey) === want.publicKey;
  const portOk = cur.listenPort === want.listenPort;
  if (peers.length === 0 && keyOk && portOk) return null;
  return {
    ...(keyOk ? {} : { privateKey: want.privateKey }),
    ...(portOk ? {} : { listenPort: want.listenPort }),
    peers,
  };
}

export interface RouteChange {
  readonly op: 'replace' | 'delete';
  readonly dst: string;
  readonly iface: string;
}

/**
 * Route changes: `replace` moves a route to another device in one atomic
 * kernel operation (no window without a route); deletes come last.
 */
export function diffRoutes(
  cur: readonly RoutePlan[] | readonly { dst: string; iface: string }[],
  want: readonly RoutePlan[],
): RouteChange[] {
  const key = (dst: string): string => parsePrefix(dst, true).text;
  const have = new Map(cur.map((r) => [key(r.dst), r.iface]));
  const wanted = new Map(want.map((r) => [key(r.dst), r.iface]));
  const out: RouteChange[] = [];
  for (const [dst, iface] of wanted)
    if (have.get(dst) !== iface) out.push({ op: 'replace', dst, iface });
  for (const [dst, iface] of have) if (!wanted.has(dst)) out.push({ op: 'delete', dst, iface });
  return out;
}
