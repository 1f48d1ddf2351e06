/** `palisade lab status`: what the state file lists, checked against the machine now. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runPaths } from './paths.js';
import { alive } from './processes.js';
import { readState, type LabState } from './state.js';
import { existingNamespaces } from './topology.js';

export interface GatewayView {
  readonly cluster: string;
  readonly devices: readonly { iface: string; listenPort: number; mtu: number }[];
  readonly peers: readonly {
    cluster: string;
    state: string;
    endpoint: string | null;
    handshakeAgeSec: number | null;
    rxBytes: number;
    txBytes: number;
  }[];
  readonly lastError: string | null;
}

export interface EnforcerView {
  readonly node: string;
  readonly cluster: string;
  readonly revision: number;
  readonly applied: number;
  readonly attached: readonly { pod: string; iface: string; attached: boolean }[];
  readonly events: Record<string, number>;
  readonly drops: Record<string, number>;
  readonly lastError: string | null;
}

export interface LabStatus {
  readonly up: boolean;
  readonly runId: string | null;
  readonly phase: LabState['phase'] | 'absent';
  readonly options: LabState['options'] | null;
  readonly etcd: string | null;
  readonly namespaces: { readonly name: string; readonly exists: boolean }[];
  readonly processes: {
    readonly role: string;
    readonly of: string;
    readonly pid: number;
    readonly alive: boolean;
  }[];
  readonly gateways: GatewayView[];
  readonly enforcers: EnforcerView[];
  readonly world: string | null;
  readonly lastError: string | null;
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

export async function labStatus(labDir: string): Promise<LabStatus> {
  const s = readState(labDir);
  if (!s) {
    return {
      up: false,
      runId: null,
      phase: 'absent',
      options: null,
      etcd: null,
      namespaces: [],
      processes: [],
      gateways: [],
      enforcers: [],
      world: null,
      lastError: null,
    };
  }
  const paths = runPaths(labDir, s.runId);
  const have = await existingNamespaces();
  const namespaces = s.namespaces.map((name) => ({ name, exists: have.has(name) }));
  const processes = s.processes.map((p) => ({
    role: p.role,
    of: p.of,
    pid: p.pid,
    alive: alive(p.pid, p.startTicks),
  }));
  const gateways: GatewayView[] = [];
  const enforcers: EnforcerView[] = [];
  for (const p of s.processes) {
    if (p.role === 'gateway') {
      const st = readJson<GatewayView>(paths.gatewayStatus(p.of));
      if (st)
        gateways.push({
          cluster: p.of,
          devices: st.devices,
          peers: st.peers,
          lastError: st.lastError,
        });
    } else if (p.role === 'enforcer') {
      const st = readJson<EnforcerView>(join(paths.nodeDir(p.of), 'status.json'));
      if (st) enforcers.push(st);
    }
  }
  const up =
    s.phase === 'up' && namespaces.every((n) => n.exists) && processes.every((p) => p.alive);
  return {
    up,
    runId: s.runId,
    phase: s.phase,
    options: s.options,
    etcd: s.etcdEndpoint,
    namespaces,
    processes,
    gateways,
    enforcers,
    world: paths.world,
    lastError: s.lastError,
  };
}
