/** The few `ip` operations a gateway needs, inside its network namespace, through execFile with timeouts. */
import { execFile } from 'node:child_process';

export class CommandError extends Error {
  override name = 'CommandError';
}

export function run(cmd: string, args: readonly string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const why = (err as { killed?: boolean }).killed
          ? `no answer within ${timeoutMs} ms`
          : String(stderr).trim() || err.message;
        reject(new CommandError(`${cmd} ${args.join(' ')}: ${why}`));
      } else resolve(String(stdout));
    });
  });
}

export class NetnsIp {
  constructor(
    readonly netns: string,
    private readonly timeoutMs = 5000,
  ) {}

  ip(args: readonly string[]): Promise<string> {
    return run('ip', ['-n', this.netns, ...args], this.timeoutMs);
  }

  async exists(): Promise<boolean> {
    const list = await run('ip', ['netns', 'list'], this.timeoutMs);
    return list.split('\n').some((l) => l.split(' ')[0] === this.netns);
  }

  async linkExists(iface: string): Promise<boolean> {
    return this.ip(['link', 'show', 'dev', iface]).then(
      () => true,
      () => false,
    );
  }

  async linkMtu(iface: string): Promise<number | null> {
    const out = await this.ip(['-j', 'link', 'show', 'dev', iface]).catch(() => null);
    if (out === null) return null;
    const j = JSON.parse(out) as { mtu?: number }[];
    return j[0]?.mtu ?? null;
  }

  async setUp(iface: string, mtu: number): Promise<void> {
    await this.ip(['link', 'set', 'dev', iface, 'mtu', String(mtu), 'up']);
  }

  async addAddress(iface: string, cidr: string): Promise<void> {
    await this.ip(['addr', 'replace', cidr, 'dev', iface]);
  }

  async deleteLink(iface: string): Promise<void> {
    await this.ip(['link', 'del', 'dev', iface]).catch(() => undefined);
  }

  /** Routes whose device is `iface`, IPv4 and IPv6. */
  async routes(iface: string): Promise<{ dst: string; iface: string }[]> {
    const out: { dst: string; iface: string }[] = [];
    for (const fam of ['-4', '-6']) {
      const text = await this.ip([fam, '-j', 'route', 'show', 'dev', iface]).catch(() => '[]');
      for (const r of JSON.parse(text || '[]') as { dst?: string; type?: string }[]) {
        if (
          r.dst &&
          r.dst !== 'default' &&
          !r.dst.startsWith('fe80:') &&
          (r.type === undefined || r.type === 'unicast')
        ) {
          out.push({ dst: r.dst, iface });
        }
      }
    }
    return out;
  }

  async replaceRoute(dst: string, iface: string): Promise<void> {
    await this.ip(['route', 'replace', dst, 'dev', iface, 'proto', 'static']);
  }

  async deleteRoute(dst: string, iface: string): Promise<void> {
    await this.ip(['route', 'del', dst, 'dev', iface]);
  }

  /** The gateway routes between its pods and the tunnel. */
  async enableForwarding(): Promise<void> {
    await run(
      'ip',
      ['netns', 'exec', this.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'],
      this.timeoutMs,
    );
    await run(
      'ip',
      ['netns', 'exec', this.netns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'],
      this.timeoutMs,
    );
  }
}
