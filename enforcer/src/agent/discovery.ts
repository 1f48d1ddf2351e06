/**
 * Endpoint discovery: which ifindex is a local pod's host-side interface.
 *
 * "routes" (default): read the node namespace's links and routes over
 * netlink (`ip -j -d link show`, `ip -j route show` for IPv4 and IPv6 — not
 * /sys, which under `nsenter --net` still shows the root namespace) and give
 * each local pod the interface of the longest-prefix route that covers one of
 * its IPs, provided that interface's link kind is allowed (default veth).
 * This is how veth CNIs wire pods: a /32 (or /128) route per pod (Calico
 * cali*, Cilium lxc*, the ptp plugin) or a per-pod subnet on the veth; a
 * bridge CNI (all pods behind cni0) is not supported by "routes" since the
 * route names the bridge: use "static" there.
 * "static": an explicit endpoint id → interface name mapping from the config.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { podId } from '../../../policy-compiler/src/model/endpoint.js';
import type { World } from '../../../policy-compiler/src/model/world.js';
import { cidrContains, parseCidr, parseIp } from '../../../policy-compiler/src/semantics/ip.js';

const run = promisify(execFile);

export interface LinkInfo {
  readonly ifindex: number;
  readonly ifname: string;
  readonly kind: string | null;
}

export interface RouteInfo {
  /** "default" or an address or CIDR */
  readonly dst: string;
  readonly dev: string | undefined;
}

/** A pod's host-side interface. */
export interface LocalInterface {
  readonly endpoint: string;
  readonly ifname: string;
  readonly ifindex: number;
}

async function ipJson(args: string[]): Promise<unknown[]> {
  const { stdout } = await run('ip', ['-j', ...args], { timeout: 5000, maxBuffer: 64 << 20 });
  const v = JSON.parse(stdout.trim() || '[]') as unknown;
  return Array.isArray(v) ? v : [];
}

/** Links and routes of the current network namespace (netlink via iproute2). */
export async function readLinksAndRoutes(): Promise<{ links: LinkInfo[]; routes: RouteInfo[] }> {
  const [links, r4, r6] = await Promise.all([
    ipJson(['-d', 'link', 'show']),
    ipJson(['-4', 'route', 'show', 'table', 'main']),
    ipJson(['-6', 'route', 'show', 'table', 'main']),
  ]);
  return {
    links: links.map((l) => {
      const o = l as { ifindex: number; ifname: string; linkinfo?: { info_kind?: string } };
      return { ifindex: o.ifindex, ifname: o.ifname, kind: o.linkinfo?.info_kind ?? null };
    }),
    routes: [...r4, ...r6].map((r) => {
      const o = r as { dst: string; dev?: string };
      return { dst: o.dst, dev: o.dev };
    }),
  };
}

/** Pods of the world scheduled on this node that have their own network namespace. */
export function localPods(world: World, cluster: string, node: string) {
  return world.pods.filter(
    (p) => p.cluster === cluster && p.nodeName === node && !p.hostNetwork && p.ips.length > 0,
  );
}

/** Pure: endpoint → interface by longest-prefix route over allowed link kinds. */
export function matchByRoutes(
  pods: readonly { cluster: string; namespace: string; name: string; ips: readonly string[] }[],
  links: readonly LinkInfo[],
  routes: readonly RouteInfo[],
  kinds: readonly string[],
): LocalInterface[] {
  const byName = new Map(links.map((l) => [l.ifname, l]));
  const candidates = routes.flatMap((r) => {
    const link = r.dev === undefined ? undefined : byName.get(r.dev);
    if (!link || link.kind === null || !kinds.includes(link.kind) || r.dst === 'default') return [];
    const text = r.dst.includes('/') ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`;
    try {
      return [{ cidr: parseCidr(text), len: Number(text.split('/')[1]), link }];
    } catch {
      return [];
    }
  });
  const out: LocalInterface[] = [];
  for (const p of pods) {
    let best: { len: number; link: LinkInfo } | undefined;
    for (const ipText of p.ips) {
      let ip;
      try {
        ip = parseIp(ipText);
      } catch {
        continue;
      }
      for (const c of candidates) {
        if ((!best || c.len > best.len) && cidrContains(c.cidr, ip)) best = c;
      }
    }
    if (best)
      out.push({ endpoint: podId(p), ifname: best.link.ifname, ifindex: best.link.ifindex });
  }
  return out;
}

/** Pure: endpoint → interface from an explicit mapping (names that do not exist are skipped). */
export function matchStatic(
  mapping: Readonly<Record<string, string>>,
  links: readonly LinkInfo[],
): LocalInterface[] {
  const byName = new Map(links.map((l) => [l.ifname, l]));
  return Object.entries(mapping).flatMap(([endpoint, ifname]) => {
    const l = byName.get(ifname);
    return l ? [{ endpoint, ifname, ifindex: l.ifindex }] : [];
  });
}
