/**
 * Applies the plan's network: namespaces, veth pairs, bridges, addresses,
 * routes and the small nftables rules that carry "arrived through the
 * tunnel" from the gateway to the nodes (docs/lab.md, "encryption"). Each
 * namespace is recorded in the state file before it is created. Nothing is
 * created in the root namespace: veths are made directly inside their
 * namespaces.
 */
import { run } from '../../tunnel/src/netns-ip.js';
import type { LabPlan, PlannedCluster, PlannedNode, PlannedPod } from './plan.js';

/** skb->mark bit the datapath reads as "arrived through WireGuard" (PAL_SKB_MARK_TUNNELED). */
export const TUNNELED_MARK = 0x100000;
/** DSCP the gateway writes on decrypted packets so the mark survives the hop to the node (marks do not cross namespaces). */
export const TUNNELED_DSCP = 63;

export type Progress = (msg: string) => void;

const ip = (ns: string, args: string[]): Promise<string> => run('ip', ['-n', ns, ...args], 10_000);
const inNs = (ns: string, cmd: string, args: string[]): Promise<string> =>
  run('ip', ['netns', 'exec', ns, cmd, ...args], 10_000);
const sysctl = (ns: string, kv: string): Promise<string> => inNs(ns, 'sysctl', ['-qw', kv]);

export async function existingNamespaces(): Promise<Set<string>> {
  const out = await run('ip', ['netns', 'list']);
  return new Set(
    out
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter(Boolean),
  );
}

/** Creates a namespace with lo up and IPv6 off (no link-local chatter next to the probes). */
export async function addNamespace(ns: string, record: (ns: string) => void): Promise<void> {
  record(ns);
  await run('ip', ['netns', 'add', ns]);
  await ip(ns, ['link', 'set', 'lo', 'up']);
  for (const k of ['all', 'default']) await sysctl(ns, `net.ipv6.conf.${k}.disable_ipv6=1`);
}

async function veth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  await run('ip', [
    'link',
    'add',
    ifA,
    'netns',
    nsA,
    'type',
    'veth',
    'peer',
    'name',
    ifB,
    'netns',
    nsB,
  ]);
}

async function bridge(ns: string): Promise<void> {
  await ip(ns, ['link', 'add', 'br0', 'type', 'bridge']);
  await ip(ns, ['link', 'set', 'br0', 'up']);
}

async function nft(ns: string, script: string): Promise<void> {
  await inNs(ns, 'nft', [script]);
}

export async function buildUnderlay(plan: LabPlan, record: (ns: string) => void): Promise<void> {
  await addNamespace(plan.underlayNs, record);
  await bridge(plan.underlayNs);
}

export async function buildCluster(
  plan: LabPlan,
  c: PlannedCluster,
  record: (ns: string) => void,
  progress: Progress,
): Promise<void> {
  // switch (the cluster's L2 fabric) and gateway
  await addNamespace(c.switchNs, record);
  await bridge(c.switchNs);
  await addNamespace(c.gatewayNs, record);
  await veth(c.gatewayNs, 'eth1', plan.underlayNs, c.underlayIf);
  await ip(plan.underlayNs, ['link', 'set', c.underlayIf, 'master', 'br0', 'up']);
  await veth(c.gatewayNs, 'eth0', c.switchNs, 'plsgw');
  await ip(c.switchNs, ['link', 'set', 'plsgw', 'master', 'br0', 'up']);
  await ip(c.gatewayNs, ['addr', 'add', `${c.gatewayUnderlayIp}/24`, 'dev', 'eth1']);
  await ip(c.gatewayNs, ['addr', 'add', `${c.gatewayFabricIp}/24`, 'dev', 'eth0']);
  await ip(c.gatewayNs, ['link', 'set', 'eth1', 'up']);
  await ip(c.gatewayNs, ['link', 'set', 'eth0', 'up']);
  await sysctl(c.gatewayNs, 'net.ipv4.ip_forward=1');
  for (const n of c.nodes) await ip(c.gatewayNs, ['route', 'add', n.podRange, 'via', n.ip]);
  // Decrypted packets (from the WireGuard devices) get the tunnel DSCP; a
  // plaintext packet from the underlay can never carry it.
  await nft(
    c.gatewayNs,
    `table ip pl_lab {
  chain pre { type filter hook prerouting priority -150; policy accept;
    iifname "${c.wgBase}*" ip dscp set ${TUNNELED_DSCP}
    iifname != "${c.wgBase}*" ip dscp ${TUNNELED_DSCP} ip dscp set cs0
  }
}`,
  );
  progress(
    `cluster ${c.name}: switch ${c.switchNs}, gateway ${c.gatewayNs} (${c.gatewayUnderlayIp} on the underlay, ${c.gatewayFabricIp} in the cluster)`,
  );
  for (const n of c.nodes) {
    await buildNode(c, n, record);
    const pods = c.pods.filter((p) => p.node === n.name);
    for (const p of pods) await buildPod(n, p, record);
    progress(
      `  node ${n.name} (${n.netns}, ${n.ip}): ${pods.map((p) => `${p.namespace}/${p.name} ${p.ip}`).join(', ')}`,
    );
  }
}

async function buildNode(
  c: PlannedCluster,
  n: PlannedNode,
  record: (ns: string) => void,
): Promise<void> {
  await addNamespace(n.netns, record);
  await veth(n.netns, 'eth0', c.switchNs, n.switchIf);
  await ip(c.switchNs, ['link', 'set', n.switchIf, 'master', 'br0', 'up']);
  await ip(n.netns, ['addr', 'add', `${n.ip}/24`, 'dev', 'eth0']);
  await ip(n.netns, ['link', 'set', 'eth0', 'up']);
  await sysctl(n.netns, 'net.ipv4.ip_forward=1');
  for (const m of c.nodes)
    if (m.name !== n.name) await ip(n.netns, ['route', 'add', m.podRange, 'via', m.ip]);
  await ip(n.netns, ['route', 'add', 'default', 'via', c.gatewayFabricIp]);
  // The tunnel DSCP from the cluster fabric becomes the datapath's mark
  // (and is cleared); pods cannot fake it.
  await nft(
    n.netns,
    `table ip pl_lab {
  chain pre { type filter hook prerouting priority -150; policy accept;
    iifname "eth0" ip dscp ${TUNNELED_DSCP} meta mark set meta mark or ${TUNNELED_MARK} ip dscp set cs0
    iifname != "eth0" ip dscp ${TUNNELED_DSCP} ip dscp set cs0
  }
}`,
  );
}

async function buildPod(
  n: PlannedNode,
  p: PlannedPod,
  record: (ns: string) => void,
): Promise<void> {
  await addNamespace(p.netns, record);
  await veth(n.netns, p.hostIf, p.netns, 'eth0');
  await ip(n.netns, ['addr', 'add', p.gatewayIp, 'peer', `${p.ip}/32`, 'dev', p.hostIf]);
  await ip(n.netns, ['link', 'set', p.hostIf, 'up']);
  await ip(p.netns, ['addr', 'add', p.ip, 'peer', `${p.gatewayIp}/32`, 'dev', 'eth0']);
  await ip(p.netns, ['link', 'set', 'eth0', 'up']);
  await ip(p.netns, ['route', 'add', 'default', 'via', p.gatewayIp]);
}

/** ifindex of an interface inside a namespace. */
export async function ifindexIn(ns: string, iface: string): Promise<number> {
  const j = JSON.parse(await ip(ns, ['-j', 'link', 'show', 'dev', iface])) as { ifindex: number }[];
  const i = j[0]?.ifindex;
  if (i === undefined) throw new Error(`no interface ${iface} in ${ns}`);
  return i;
}

export async function deleteNamespace(ns: string): Promise<void> {
  await run('ip', ['netns', 'del', ns], 10_000).catch(() => undefined);
}
