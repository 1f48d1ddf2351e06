/** Starts loader-child.ts inside a network namespace and reads its one JSON line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import type {
  AttachMode,
  AttachModeChoice,
  Attachment,
} from '../../../enforcer/src/datapath/datapath.js';

export interface LoaderInfo {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** attach mode the loader ended up with, and why */
  readonly mode: AttachMode;
  readonly reason: string;
  /** kernel ids of the loader's own from_pod (ingress) and to_pod (egress) programs */
  readonly programs: { readonly ingress: number; readonly egress: number };
  /** per ifindex: what ran before the loader opened the object, and after it attached */
  readonly before: Attachment[];
  readonly after: Attachment[];
  /** per ifindex, what the kernel runs: tcx program ids per hook, our clsact filters' program ids */
  readonly kernel: KernelHooks[];
}

export interface KernelHooks {
  readonly tcxIngress: number[];
  readonly tcxEgress: number[];
  readonly clsactIngress: number | null;
  readonly clsactEgress: number | null;
}

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

export function startLoader(
  ns: string,
  pinDir: string,
  ifindexes: readonly number[],
  attach: AttachModeChoice = 'auto',
  action: 'attach' | 'detach' = 'attach',
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
      action,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PALISADE_DATAPATH_ATTACH: attach },
    },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`loader did not start: ${stderr}`));
    }, 30_000);
    // 'close' (stdio drained), not 'exit': a detach run prints its line and exits
    proc.on('close', (code) => {
      clearTimeout(t);
      reject(new Error(`loader exited ${code}: ${stderr}`));
    });
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
