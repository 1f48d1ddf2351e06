/**
 * `palisade lab down`: removes what the state file lists — processes (by pid
 * and start time, never by name), wireguard-go devices the gateways left,
 * namespaces (recorded and planned), bpffs pin directories, the run's files —
 * then the state file. Safe to run twice and after a crash: every step
 * tolerates what is already gone. Processes started just before a SIGKILL of
 * `up` (pid not yet recorded) are found by the run id in their argv or by
 * living in one of the lab's namespaces.
 */
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { isWireguardGo, stopWireguardGo } from '../../tunnel/src/wireguard-go-process.js';
import { PIN_ROOT, runPaths } from './paths.js';
import { alive, findLabProcesses, netnsInode, startTicks, stopPid } from './processes.js';
import { readState, statePath, type ProcessRole } from './state.js';
import { deleteNamespace, existingNamespaces, type Progress } from './topology.js';

const ORDER: ProcessRole[] = [
  'listener',
  'enforcer',
  'gateway',
  'wireguard' as ProcessRole,
  'etcd-keeper',
  'etcd',
];

export interface DownResult {
  readonly found: boolean;
  readonly processes: number;
  readonly namespaces: number;
  readonly pinDirs: number;
}

export async function downLab(labDir: string, progress: Progress): Promise<DownResult> {
  const s = readState(labDir);
  if (!s) {
    if (existsSync(labDir)) rmSync(labDir, { recursive: true, force: true });
    progress('no lab state found: nothing to remove');
    return { found: false, processes: 0, namespaces: 0, pinDirs: 0 };
  }
  const paths = runPaths(labDir, s.runId);
  let stopped = 0;

  // 1. recorded processes, consumers before what they depend on (gateways leave the store cleanly while etcd runs)
  const procs = [...s.processes].sort((a, b) => ORDER.indexOf(a.role) - ORDER.indexOf(b.role));
  for (const p of procs) {
    if (alive(p.pid, p.startTicks)) {
      await stopPid(p.pid, p.startTicks, p.role === 'gateway' ? 8000 : 3000);
      stopped++;
    }
  }
  // 2. wireguard-go devices of gateway managers that died without removing them
  if (existsSync(paths.tunnelState)) {
    for (const f of readdirSync(paths.tunnelState)) {
      if (!/^[^.]+\.json$/.test(f)) continue;
      try {
        const st = JSON.parse(readFileSync(`${paths.tunnelState}/${f}`, 'utf8')) as {
          devices?: Record<string, { pid: number | null }>;
        };
        for (const [iface, d] of Object.entries(st.devices ?? {})) {
          if (d.pid !== null && isWireguardGo(d.pid, iface)) {
            await stopWireguardGo(d.pid, iface);
            stopped++;
          }
        }
      } catch {
        // unreadable: the sweep below still finds the process by its namespace
      }
    }
  }
  // etcd whose keeper was killed before recording it
  if (existsSync(paths.etcdPidFile)) {
    const pid = Number(readFileSync(paths.etcdPidFile, 'utf8').trim());
    if (pid > 0 && readCmdline(pid).includes(s.runId)) {
      await stopPid(pid, startTicks(pid));
      stopped++;
    }
  }
  // 3. anything else of this run: argv carries the run id, or it lives in a lab namespace
  const allNs = [...new Set([...s.namespaces, ...s.plannedNamespaces])];
  const inodes = new Set(allNs.map(netnsInode).filter((i): i is number => i !== null));
  for (let round = 0; round < 3; round++) {
    const left = findLabProcesses(s.runId, inodes);
    if (left.length === 0) break;
    for (const pid of left) {
      await stopPid(pid, startTicks(pid), 2000);
      stopped++;
    }
  }
  progress(`stopped ${stopped} process(es)`);

  // 4. namespaces (their veths, bridges, WireGuard devices and nft tables go with them)
  const have = await existingNamespaces();
  let removedNs = 0;
  for (const ns of allNs.reverse()) {
    if (!have.has(ns)) continue;
    await deleteNamespace(ns);
    removedNs++;
  }
  progress(`removed ${removedNs} network namespace(s)`);

  // 5. pinned maps and programs
  let pins = 0;
  for (const d of s.pinDirs) {
    if (existsSync(d)) {
      rmSync(d, { recursive: true, force: true });
      pins++;
    }
  }
  try {
    if (existsSync(PIN_ROOT) && readdirSync(PIN_ROOT).length === 0) rmdirSync(PIN_ROOT);
  } catch {
    // another lab's pins (never ours to remove)
  }
  progress(`removed ${pins} bpffs pin dir(s)`);

  // 6. files, state last
  for (const p of s.paths) rmSync(p, { recursive: true, force: true });
  rmSync(statePath(labDir), { force: true });
  try {
    if (readdirSync(labDir).length === 0) rmdirSync(labDir);
  } catch {
    // already gone
  }
  progress(`lab ${s.runId} removed`);
  return { found: true, processes: stopped, namespaces: removedNs, pinDirs: pins };
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}
