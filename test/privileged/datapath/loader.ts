/** Starts loader-child.ts inside a network namespace and reads its one JSON line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface LoaderInfo {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly before: (number | null)[];
  readonly after: (number | null)[][];
}

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

export function startLoader(
  ns: string,
  pinDir: string,
  ifindexes: readonly number[],
): Promise<LoaderInfo> {
  // nsenter, not `ip netns exec`: the latter remounts /sys, hiding the
  // bpffs at /sys/fs/bpf where the pins live.
  const proc = spawn(
    'nsenter',
    [
      `--net=/run/netns/${ns}`,
      process.execPath,
      '--import',
      here('./ts-register.mjs'),
      here('./loader-child.ts'),
      pinDir,
      ifindexes.join(','),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`loader did not start: ${stderr}`));
    }, 30_000);
    proc.on('exit', (code) => reject(new Error(`loader exited ${code}: ${stderr}`)));
    createInterface({ input: proc.stdout! }).once('line', (line) => {
      clearTimeout(t);
      const j = JSON.parse(line) as Omit<LoaderInfo, 'proc'>;
      resolve({ ...j, proc });
    });
  });
}

/** kill -9 by pid and wait for the exit. */
export function killLoader(l: LoaderInfo): Promise<void> {
  if (l.proc.exitCode !== null || l.proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    l.proc.removeAllListeners('exit');
    l.proc.once('exit', () => resolve());
    process.kill(l.pid, 'SIGKILL');
  });
}
