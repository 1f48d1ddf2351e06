/**
 * Long-running lab processes: started detached (own process group, not tied
 * to `lab up`), identified afterwards by pid + start time, and stopped only by
 * that pid. Every one carries the lab's run id in its argv or lives in one of
 * the lab's network namespaces, so `down` can also find one that was started
 * just before a SIGKILL of `up` hid its pid.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

export function startTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]);
  } catch {
    return null;
  }
}

export function alive(pid: number, ticks: number | null): boolean {
  const now = startTicks(pid);
  if (now === null) return false;
  // a zombie is gone for our purposes
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (state.slice(state.lastIndexOf(')') + 2).startsWith('Z')) return false;
  } catch {
    return false;
  }
  return ticks === null || now === ticks;
}

/** Spawns `argv` detached with output to `logPath`; returns its pid at once. */
export function spawnDetached(
  argv: readonly string[],
  logPath: string,
  env: NodeJS.ProcessEnv = process.env,
): number {
  const fd = openSync(logPath, 'a', 0o600);
  try {
    const child = spawn(argv[0] as string, argv.slice(1), {
      detached: true,
      stdio: ['ignore', fd, fd],
      env,
    });
    if (child.pid === undefined) throw new Error(`could not start ${argv.join(' ')}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, bounded wait, then SIGKILL; only while the pid is still the one we started. */
export async function stopPid(pid: number, ticks: number | null, graceMs = 3000): Promise<void> {
  if (!alive(pid, ticks)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let waited = 0; waited < graceMs && alive(pid, ticks); waited += 50) await sleep(50);
  if (alive(pid, ticks)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    for (let i = 0; i < 40 && alive(pid, ticks); i++) await sleep(50);
  }
}

/** Inode of a named network namespace (/run/netns/<name>), or null. */
export function netnsInode(name: string): number | null {
  try {
    return statSync(`/run/netns/${name}`).ino;
  } catch {
    return null;
  }
}

/**
 * Pids of processes whose argv contains `token` or whose network namespace is
 * one of `netnsInodes` — the lab's own processes, whatever recorded them.
 */
export function findLabProcesses(token: string, netnsInodes: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      if (token && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(token)) {
        out.push(pid);
        continue;
      }
      const link = readlinkSync(`/proc/${pid}/ns/net`);
      const m = /net:\[(\d+)\]/.exec(link);
      if (m && netnsInodes.has(Number(m[1]))) out.push(pid);
    } catch {
      // gone or not readable
    }
  }
  return out;
}
