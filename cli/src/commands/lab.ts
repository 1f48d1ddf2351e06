/**
 * `palisade lab up|demo|status|down`: the multicluster lab in network
 * namespaces on this machine (lab/, docs/lab.md). Root only.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import {
  DEFAULT_LAB_DIR,
  DEFAULT_OPTIONS,
  LabError,
  downLab,
  labStatus,
  upLab,
  validateOptions,
  type LabOptions,
  type LabStatus,
} from '../../../lab/src/index.js';
import { CliError, EXIT_FINDINGS, EXIT_USAGE, type CliContext } from '../context.js';
import { renderTable } from '../render/table.js';
import { outputOption } from './options.js';

interface SizeOpts {
  clusters: string;
  nodes: string;
  pods: string;
  labDir: string;
}

const sizeOptions = (cmd: Command): Command =>
  cmd
    .option('--clusters <n>', 'clusters', String(DEFAULT_OPTIONS.clusters))
    .option('--nodes <n>', 'nodes per cluster', String(DEFAULT_OPTIONS.nodes))
    .option('--pods <n>', 'pods per node', String(DEFAULT_OPTIONS.pods));

const labDirOption = (): Option => new Option('--lab-dir <dir>', 'state directory of the lab').default(DEFAULT_LAB_DIR);

function options(o: SizeOpts): LabOptions {
  const lo = { clusters: Number(o.clusters), nodes: Number(o.nodes), pods: Number(o.pods) };
  const errs = validateOptions(lo);
  if (errs.length > 0) throw new CliError(`lab: ${errs.join('; ')}`, EXIT_USAGE);
  return lo;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new CliError('lab: needs root (network namespaces, BPF, WireGuard)', EXIT_USAGE);
}

async function guard<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof CliError) throw e;
    if (e instanceof LabError) throw new CliError(`lab: ${e.message}`, EXIT_USAGE);
    throw new CliError(`lab: ${(e as Error).message}`, EXIT_USAGE);
  }
}

function cliPath(): string {
  const p = process.argv[1];
  if (!p) throw new CliError('lab: cannot tell where the palisade CLI is');
  return p;
}

function renderStatus(st: LabStatus): string {
  if (st.phase === 'absent') return 'no lab (run: palisade lab up)\n';
  const o = st.options;
  let out = `lab ${st.runId}  ${st.up ? 'up' : `NOT HEALTHY (phase ${st.phase})`}  ${o ? `${o.clusters} clusters × ${o.nodes} nodes × ${o.pods} pods` : ''}  etcd ${st.etcd ?? '-'}\n`;
  out += `world ${st.world}\n`;
  if (st.lastError) out += `last error: ${st.lastError}\n`;
  const missingNs = st.namespaces.filter((n) => !n.exists);
  out += `namespaces: ${st.namespaces.length}${missingNs.length ? ` (missing: ${missingNs.map((n) => n.name).join(', ')})` : ''}\n\n`;
  out += renderTable(['role', 'of', 'pid', 'state'], st.processes.map((p) => [p.role, p.of, String(p.pid), p.alive ? 'running' : 'DEAD']));
  out += '\n' + renderGateways(st);
  out += '\n' + renderTable(
    ['node', 'revision', 'pods attached', 'denied', 'new allowed', 'error'],
    st.enforcers.map((e) => [e.node, String(e.revision), `${e.attached.filter((a) => a.attached).length}/${e.attached.length}`, String(e.events['denied'] ?? 0), String(e.events['allowed'] ?? 0), e.lastError ?? '-']),
  );
  return out;
}

export function renderGateways(st: LabStatus): string {
  const rows = st.gateways.flatMap((g) =>
    g.peers.map((p) => [g.cluster, g.devices.map((d) => `${d.iface}:${d.listenPort}`).join(' '), p.cluster, p.state, p.endpoint ?? '-', p.handshakeAgeSec === null ? 'never' : `${Math.round(p.handshakeAgeSec)}s`, String(p.rxBytes), String(p.txBytes)]),
  );
  return renderTable(['gateway', 'device', 'peer', 'state', 'endpoint', 'handshake', 'rx', 'tx'], rows);
}

export function lab(program: Command, ctx: CliContext): void {
  const l = program.command('lab').description('multicluster lab in network namespaces on this machine (root): up, demo, status, down');
  const progress = (m: string): void => void ctx.stderr.write(`${m}\n`);

  sizeOptions(l.command('up').description('build the lab: clusters of namespaces, WireGuard gateways, etcd, one enforcer per node'))
    .addOption(labDirOption())
    .action(async (o: SizeOpts) => {
      requireRoot();
      const lo = options(o);
      await guard(() => upLab({ labDir: o.labDir, cliPath: cliPath(), progress }, lo));
    });

  l.command('down')
    .description('remove every namespace, process, pin and file the lab made (safe to run twice, also after a crash)')
    .addOption(labDirOption())
    .action(async (o: { labDir: string }) => {
      requireRoot();
      await guard(() => downLab(o.labDir, progress));
    });

  l.command('status')
    .description('namespaces, processes, tunnel peers and enforcers of the lab')
    .addOption(labDirOption())
    .addOption(outputOption(['table', 'json'], 'table'))
    .action(async (o: { labDir: string; output: 'table' | 'json' }) => {
      const st = await guard(() => labStatus(o.labDir));
      ctx.stdout.write(o.output === 'json' ? `${JSON.stringify(st, null, 2)}\n` : renderStatus(st));
      if (!st.up) ctx.exitCode = EXIT_FINDINGS;
    });
}
