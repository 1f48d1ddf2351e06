/**
 * `palisade matrix`: every ordered pair of endpoints × every port, through
 * one engine. Prints a grid per port (table), one row per probe with the
 * deciding rules (wide), or the stable JSON shape of docs/cli.md.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { EngineName, ProbeVerdict } from '../../../policy-compiler/src/index.js';
import type { PortSpec } from '../args.js';
import { CliError, type CliContext } from '../context.js';
import { ENGINE_NAMES, engineFor } from '../engines.js';
import { renderMatrixGrid, renderMatrixWide } from '../render/matrix-table.js';
import { probeJson } from '../render/probes.js';
import { jsonArrayLines, writeAll } from '../output.js';
import { loadValidWorld } from '../world-input.js';
import {
  externalOption,
  filenameOption,
  outputOption,
  portOption,
  portsOrDefault,
} from './options.js';

interface MatrixOptions {
  filename: string[];
  port?: PortSpec[];
  external?: string[];
  engine: EngineName;
  namespace?: string;
  output: 'table' | 'wide' | 'json';
}

/** A pod id `<cluster>/<namespace>/<pod>` is in namespace `ns`; nodes and externals are in none. */
const inNamespace = (id: string, ns: string): boolean => {
  if (id.startsWith('node:') || id.startsWith('ip:')) return false;
  return id.split('/')[1] === ns;
};

function* mapIter<T, U>(xs: readonly T[], f: (x: T) => U): Generator<U> {
  for (const x of xs) yield f(x);
}

export function keepNamespace(verdicts: readonly ProbeVerdict[], ns: string): ProbeVerdict[] {
  return verdicts.filter((v) => inNamespace(v.probe.from, ns) && inNamespace(v.probe.to, ns));
}

export function matrix(program: Command, ctx: CliContext): void {
  program
    .command('matrix')
    .description('print the verdict of every ordered pair of endpoints on every port')
    .addOption(filenameOption())
    .addOption(portOption())
    .addOption(externalOption())
    .addOption(
      new Option('--engine <name>', 'evaluation engine').choices(ENGINE_NAMES).default('reference'),
    )
    .option(
      '-n, --namespace <name>',
      'only probes between pods of this namespace (in every cluster)',
    )
    .addOption(outputOption(['table', 'wide', 'json'], 'table'))
    .addHelpText(
      'after',
      `\nExit codes: 0 ok (whatever the verdicts), 2 usage or input error.\nExamples:\n  ${ctx.displayName} matrix -f examples/world --port tcp/8443 --external 203.0.113.7\n  ${ctx.displayName} matrix -f examples/world -n shop -o wide\n`,
    )
    .action(async (opts: MatrixOptions) => {
      const engine = engineFor(opts.engine);
      const world = await loadValidWorld(opts.filename, ctx);
      if (
        opts.namespace !== undefined &&
        !world.namespaces.some((n) => n.name === opts.namespace)
      ) {
        const known = [...new Set(world.namespaces.map((n) => n.name))].sort().join(', ');
        throw new CliError(
          `${ctx.displayName} matrix: no namespace "${opts.namespace}" in any cluster (known: ${known})`,
        );
      }
      const ports = portsOrDefault(opts.port, world);
      if (ports.length === 0) {
        throw new CliError(
          'no ports to probe: the world has no container ports; give --port PROTO/N',
        );
      }
      let verdicts = await engine({ world, ports, externals: opts.external ?? [] });
      if (opts.namespace !== undefined) verdicts = keepNamespace(verdicts, opts.namespace);
      if (opts.output === 'json') {
        await writeAll(ctx.stdout, jsonArrayLines('probes', mapIter(verdicts, probeJson)));
      } else if (opts.output === 'wide') {
        ctx.stdout.write(renderMatrixWide(verdicts));
      } else {
        ctx.stdout.write(renderMatrixGrid(verdicts));
      }
    });
}
