/** Where a lab run keeps its files: <labDir>/state.json and <labDir>/<runId>/… (tmpfs under /run). */
import { join } from 'node:path';

export interface RunPaths {
  readonly runDir: string;
  readonly world: string;
  readonly logs: string;
  readonly etcdData: string;
  readonly etcdPidFile: string;
  readonly tunnelDir: string;
  readonly tunnelKeys: string;
  readonly tunnelState: string;
  gatewayConfig(cluster: string): string;
  gatewayStatus(cluster: string): string;
  gatewayState(cluster: string): string;
  nodeDir(node: string): string;
}

export function runPaths(labDir: string, runId: string): RunPaths {
  const runDir = join(labDir, runId);
  const tunnelDir = join(runDir, 'tunnel');
  const tunnelState = join(tunnelDir, 'state');
  return {
    runDir,
    world: join(runDir, 'world'),
    logs: join(runDir, 'logs'),
    etcdData: join(runDir, 'etcd', 'data'),
    etcdPidFile: join(runDir, 'etcd', 'etcd.pid'),
    tunnelDir,
    tunnelKeys: join(tunnelDir, 'keys'),
    tunnelState,
    gatewayConfig: (c) => join(tunnelDir, `${c}.yaml`),
    gatewayStatus: (c) => join(tunnelState, `${c}.status.json`),
    gatewayState: (c) => join(tunnelState, `${c}.json`),
    nodeDir: (n) => join(runDir, 'nodes', n),
  };
}

export const PIN_ROOT = '/sys/fs/bpf/palisade-lab';
