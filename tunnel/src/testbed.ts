/**
 * A mesh of clusters in network namespaces, for the privileged tests and the
 * benchmark (the lab builds its own, richer one): one underlay namespace with
 * a bridge, per cluster a gateway namespace on that bridge and one pod
 * namespace behind the gateway. Every address lives in these namespaces;
 * cleanup() deletes exactly what create() made.
 *   underlay 172.31.0.<i>/24   pod 10.<i>.1.2/24 and fd00:<i>:0:1::2/64 (pod CIDRs 10.<i>.0.0/16, fd00:<i>::/48)
 *   service CIDR 10.<100+i>.0.0/16, node CIDR 192.168.<i>.0/24 (declared only)
 */
import { run } from './netns-ip.js';
import type { ClusterRecord } from './mesh-store.js';

export interface TestCluster {
  readonly index: number;
  readonly name: string;
  readonly gwNs: string;
  readonly podNs: string;
  readonly podIP: string;
  readonly podIP6: string;
  readonly underlayIP: string;
  readonly ifaceBase: string;
  readonly record: ClusterRecord;
}

export const WG_BASE_PORT = 51820;

export class MeshTestbed {
  private readonly namespaces: string[] = [];
  readonly underlay: string;

  /** `prefix`: at most 8 characters, unique per run (names interfaces too). */
  constructor(readonly prefix: string) {
    this.underlay = `${prefix}-u`;
  }

  private async ns(name: string): Promise<string> {
    await run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  async createUnderlay(): Promise<void> {
    await this.ns(this.underlay);
    // The underlay is IPv4 only: no IPv6 link-local chatter next to the tunnel traffic.
    for (const k of ['all', 'default'])
      await run('ip', [
        'netns',
        'exec',
        this.underlay,
        'sysctl',
        '-qw',
        `net.ipv6.conf.${k}.disable_ipv6=1`,
      ]);
    await run('ip', ['-n', this.underlay, 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', this.underlay, 'link', 'set', 'br0', 'up']);
  }

  /** Adds cluster i (1-based); `podCIDR` overrides the default to make conflicts. */
  async addCluster(
    i: number,
    opts: { podCIDR?: string; name?: string } = {},
  ): Promise<TestCluster> {
    const gwNs = await this.ns(`${this.prefix}-g${i}`);
    const podNs = await this.ns(`${this.prefix}-p${i}`);
    const u = (a: string[]) => run('ip', ['-n', this.underlay, ...a]);
    const g = (a: string[]) => run('ip', ['-n', gwNs, ...a]);
    const p = (a: string[]) => run('ip', ['-n', podNs, ...a]);
    await run('ip', [
      'link',
      'add',
      `${this.prefix}u${i}`,
      'netns',
      this.underlay,
      'type',
      'veth',
      'peer',
      'name',
      `${this.prefix}e${i}`,
      'netns',
      gwNs,
    ]);
    await u(['link', 'set', `${this.prefix}u${i}`, 'master', 'br0', 'up']);
    await g(['link', 'set', `${this.prefix}e${i}`, 'name', 'eth0']);
    await run('ip', ['netns', 'exec', gwNs, 'sysctl', '-qw', 'net.ipv6.conf.eth0.disable_ipv6=1']);
    await g(['addr', 'add', `172.31.0.${i}/24`, 'dev', 'eth0']);
    await g(['link', 'set', 'eth0', 'up']);
    await run('ip', [
      'link',
      'add',
      `${this.prefix}q${i}`,
      'netns',
      gwNs,
      'type',
      'veth',
      'peer',
      'name',
      `${this.prefix}r${i}`,
      'netns',
      podNs,
    ]);
    await g(['link', 'set', `${this.prefix}q${i}`, 'name', 'pod0']);
    await g(['addr', 'add', `10.${i}.1.1/24`, 'dev', 'pod0']);
    await g(['link', 'set', 'pod0', 'up']);
    await p(['link', 'set', `${this.prefix}r${i}`, 'name', 'eth0']);
    await p(['addr', 'add', `10.${i}.1.2/24`, 'dev', 'eth0']);
    await p(['link', 'set', 'eth0', 'up']);
    await p(['route', 'add', 'default', 'via', `10.${i}.1.1`]);
    // Dual stack pods: fd00:<i>:0:1::2/64 behind fd00:<i>:0:1::1 (no DAD wait: the addresses are ours).
    await g(['addr', 'add', `fd00:${i}:0:1::1/64`, 'dev', 'pod0', 'nodad']);
    await p(['addr', 'add', `fd00:${i}:0:1::2/64`, 'dev', 'eth0', 'nodad']);
    await p(['-6', 'route', 'add', 'default', 'via', `fd00:${i}:0:1::1`]);
    const name = opts.name ?? `c${i}`;
    return {
      index: i,
      name,
      gwNs,
      podNs,
      podIP: `10.${i}.1.2`,
      podIP6: `fd00:${i}:0:1::2`,
      underlayIP: `172.31.0.${i}`,
      ifaceBase: `${this.prefix}w${i}`,
      record: {
        name,
        labels: { 'palisade.dev/cluster-name': name },
        podCIDRs: [opts.podCIDR ?? `10.${i}.0.0/16`, `fd00:${i}::/48`],
        serviceCIDRs: [`10.${100 + i}.0.0/16`],
        nodeCIDRs: [`192.168.${i}.0/24`],
        gateway: { endpoint: `172.31.0.${i}:${WG_BASE_PORT}` },
      },
    };
  }

  exec(ns: string, cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
  }

  async cleanup(): Promise<void> {
    for (const ns of this.namespaces.splice(0).reverse())
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}
