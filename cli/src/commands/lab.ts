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
  readState,
  upLab,
  validateOptions,
  type LabOptions,
} from '../../../lab/src/index.js';
import { renderDemo, renderStatus } from '../../../lab/src/render.js';
import { runDemo } from '../../../lab/src/demo.js';
import { CliError, EXIT_FINDINGS, EXIT_USAGE, type CliContext } from '../context.js';
import { outputOption } from './options.js';

interface SizeOpts {
  clusters?: string;
  nodes?: string;
  pods?: string;
  prefix?: string;
  labDir: string;
}

const sizeOptions = (cmd: Command): Command =>
  cmd
    .option('--clusters <n>', `clusters (default ${DEFAULT_OPTIONS.clusters})`)
    .option('--nodes <n>', `nodes per cluster (default ${DEFAULT_OPTIONS.nodes})`)
    .option('--pods <n>', `pods per node (default ${DEFAULT_OPTIONS.pods})`)
    .option('--prefix <p>', "prefix of the lab's namespaces and host-wide names (default pl-)");

const labDirOption = (): Option =>
  new Option('--lab-dir <dir>', 'state directory of the lab').default(DEFAULT_LAB_DIR);

/**
 * Sizes from the flags; with none given, `demo` uses the lab that is up (any
 * size) and everything else the defaults.
 */
function options(o: SizeOpts, current?: LabOptions | null): LabOptions {
  const none =
    o.clusters === undefined &&
    o.nodes === undefined &&
    o.pods === undefined &&
    o.prefix === undefined;
  const base = none && current ? current : DEFAULT_OPTIONS;
  const num = (v: string | undefined, d: number): number => (v === undefined ? d : Number(v));
  const lo = {
    clusters: num(o.clusters, base.clusters),
    nodes: num(o.nodes, base.nodes),
    pods: num(o.pods, base.pods),
    ...(o.prefix !== undefined
      ? { prefix: o.prefix }
      : base.prefix !== undefined
        ? { prefix: base.prefix }
        : {}),
  };
  const errs = validateOptions(lo);
  if (errs.length > 0) throw new CliError(`lab: ${errs.join('; ')}`, EXIT_USAGE);
  return lo;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0)
    throw new CliError('lab: needs root (network namespaces, BPF, WireGuard)', EXIT_USAGE);
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

export function lab(program: Command, ctx: CliContext): void {
  const l = program
    .command('lab')
    .description(
      'multicluster lab in network namespaces on this machine (root): up, demo, status, down',
    );
  const progress = (m: string): void => void ctx.stderr.write(`${m}\n`);

  sizeOptions(
    l
      .command('up')
      .description(
        'build the lab: clusters of namespaces, WireGuard gateways, etcd, one enforcer per node',
      ),
  )
    .addOption(labDirOption())
    .action(async (o: SizeOpts) => {
      requireRoot();
      const lo = options(o);
      await guard(() => upLab({ labDir: o.labDir, cliPath: cliPath(), progress }, lo));
    });

  sizeOptions(
    l
      .command('demo')
      .description(
        'run up if needed, send real traffic for every pod pair and port, compare with palisade matrix, show flows, metrics, tunnel and a live policy change',
      ),
  )
    .addOption(labDirOption())
    .addOption(outputOption(['table', 'json'], 'table'))
    .option('--timeout <ms>', 'per-probe timeout', '1500')
    .action(async (o: SizeOpts & { output: 'table' | 'json'; timeout: string }) => {
      requireRoot();
      const lo = options(o, readState(o.labDir)?.options);
      const timeoutMs = Number(o.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 200 || timeoutMs > 10_000)
        throw new CliError('lab demo: --timeout: an integer from 200 to 10000 (ms)');
      const report = await guard(() =>
        runDemo({ labDir: o.labDir, cliPath: cliPath(), progress }, lo, { timeoutMs }),
      );
      ctx.stdout.write(
        o.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderDemo(report),
      );
      if (!report.ok) {
        ctx.stderr.write(
          `lab demo: ${report.mismatches.length + report.change.mismatches.length} probe(s) differ from the prediction\n`,
        );
        ctx.exitCode = EXIT_FINDINGS;
      }
    });

  l.command('down')
    .description(
      'remove every namespace, process, pin and file the lab made (safe to run twice, also after a crash)',
    )
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
