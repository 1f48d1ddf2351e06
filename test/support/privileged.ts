/**
 * Privileged suites never skip: a missing capability is a test failure with a
 * message that says what is missing and how to get it (scripts/setup.sh).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export type Need =
  'root' | 'bpffs' | 'netns' | 'wireguard-go' | 'wg' | 'etcd' | 'tcpdump' | 'iperf3' | 'clang';

const tools: Partial<Record<Need, string>> = {
  'wireguard-go': 'wireguard-go',
  wg: 'wg',
  etcd: 'etcd',
  tcpdump: 'tcpdump',
  iperf3: 'iperf3',
  clang: 'clang',
};

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Throws (fails the suite) unless every need is met. Call in beforeAll. */
export function requirePrivileges(...needs: Need[]): void {
  const missing: string[] = [];
  for (const n of needs) {
    if (n === 'root') {
      if (process.getuid?.() !== 0) missing.push('root (run the suite as root)');
    } else if (n === 'bpffs') {
      if (!existsSync('/sys/fs/bpf')) missing.push('bpffs at /sys/fs/bpf');
    } else if (n === 'netns') {
      if (!onPath('ip')) missing.push('iproute2 (ip)');
    } else {
      const t = tools[n];
      if (t && !onPath(t)) missing.push(`${t} (Debian package; scripts/setup.sh installs it)`);
    }
  }
  if (missing.length > 0) {
    throw new Error(`privileged test cannot run: missing ${missing.join(', ')}`);
  }
}
