/**
 * `palisade diff -f OLD -f NEW`: the probes whose verdict differs between two
 * worlds (policy change review in CI). Exit 1 when any verdict changes.
 * Probes that exist in only one world (an endpoint added or removed) have no
 * verdict to compare; they are counted, and their endpoints listed.
 */
import type { Command } from 'commander';
import type { ProbeVerdict } from '../../../policy-compiler/src/index.js';
import type { PortSpec } from '../args.js';
import { CliError, EXIT_FINDINGS, EXIT_OK, type CliContext } from '../context.js';
import { engineFor } from '../engines.js';
import { decisionShort } from '../render/names.js';
import { probeJson, probeKey } from '../render/probes.js';
import { renderTable } from '../render/table.js';
import { jsonArrayLines, writeAll } from '../output.js';
import { loadValidWorld } from '../world-input.js';
import {
  externalOption,
  filenameOption,
  outputOption,
  portOption,
  portsOrDefault,
} from './options.js';

interface DiffOptions {
  filename: string[];
  port?: PortSpec[];
  external?: string[];
  output: 'table' | 'json';
}

export interface VerdictChange {
  readonly old: ProbeVerdict;
  readonly new: ProbeVerdict;
}

export interface MatrixDiff {
  readonly changes: VerdictChange[];
  readonly onlyOld: number;
  readonly onlyNew: number;
  readonly endpointsRemoved: string[];
  readonly endpointsAdded: string[];
}

/** Pure comparison of two matrices (any order); changes in the new matrix's order. */
export function diffMatrices(
  oldProbes: readonly ProbeVerdict[],
  newProbes: readonly ProbeVerdict[],
): MatrixDiff {
  const oldByKey = new Map(oldProbes.map((v) => [probeKey(v.probe), v]));
  const newKeys = new Set(newProbes.map((v) => probeKey(v.probe)));
  const changes: VerdictChange[] = [];
  let onlyNew = 0;
  for (const n of newProbes) {
    const o = oldByKey.get(probeKey(n.probe));
    if (o === undefined) onlyNew++;
    else if (o.verdict !== n.verdict) changes.push({ old: o, new: n });
  }
  const onlyOld = oldProbes.filter((o) => !newKeys.has(probeKey(o.probe))).length;
  const endpoints = (ps: readonly ProbeVerdict[]): Set<string> =>
    new Set(ps.flatMap((v) => [v.probe.from, v.probe.to]));
  const oldEps = endpoints(oldProbes);
  const newEps = endpoints(newProbes);
  return {
    changes,
    onlyOld,
    onlyNew,
    endpointsRemoved: [...oldEps].filter((e) => !newEps.has(e)),
    endpointsAdded: [...newEps].filter((e) => !oldEps.has(e)),
  };
}

/** The JSON of docs/cli.md, one change per line (a big diff never becomes one huge string). */
function* diffJson(d: MatrixDiff): Generator<string> {
  const side = (v: ProbeVerdict) => {
    const { verdict, egress, ingress } = probeJson(v);
    return { verdict, egress, ingress };
  };
  const changes = function* () {
    for (const c of d.changes) {
      yield {
        from: c.new.probe.from,
        to: c.new.probe.to,
        protocol: c.new.probe.protocol,
        port: c.new.probe.port,
        old: side(c.old),
        new: side(c.new),
      };
    }
  };
  yield* jsonArrayLines('changes', changes(), {
    onlyOld: d.onlyOld,
    onlyNew: d.onlyNew,
    endpointsRemoved: d.endpointsRemoved,
    endpointsAdded: d.endpointsAdded,
  });
}

/** Which direction decided a probe's verdict: the denying one, else both allowed. */
function decidedBy(v: ProbeVerdict): string {
  if (v.egress.verdict === 'Deny') return `egress ${decisionShort(v.egress.decidedBy)}`;
  if (v.ingress.verdict === 'Deny') return `ingress ${decisionShort(v.ingress.decidedBy)}`;
  return `egress ${decisionShort(v.egress.decidedBy)}; ingress ${decisionShort(v.ingress.decidedBy)}`;
}

function diffText(d: MatrixDiff): string {
  const parts: string[] = [];
  if (d.changes.length === 0) parts.push('no verdict changes\n');
  else
    parts.push(
      renderTable(
        ['from', 'to', 'port', 'old', 'new', 'now decided by'],
        d.changes.map((c) => [
          c.new.probe.from,
          c.new.probe.to,
          `${c.new.probe.protocol}/${c.new.probe.port}`,
          c.old.verdict,
          c.new.verdict,
          decidedBy(c.new),
        ]),
      ),
    );
  if (d.endpointsRemoved.length > 0)
    parts.push(`endpoints removed: ${d.endpointsRemoved.join(', ')}\n`);
  if (d.endpointsAdded.length > 0) parts.push(`endpoints added: ${d.endpointsAdded.join(', ')}\n`);
  if (d.onlyOld + d.onlyNew > 0) {
    parts.push(`probes not compared: ${d.onlyOld} only in OLD, ${d.onlyNew} only in NEW\n`);
  }
  return parts.join('');
}

export function diff(program: Command, ctx: CliContext): void {
  program
    .command('diff')
    .description('which probes change verdict between two worlds (exit 1 when any does)')
    .addOption(filenameOption('exactly two: OLD then NEW, each a'))
    .addOption(portOption())
    .addOption(externalOption())
    .addOption(outputOption(['table', 'json'], 'table'))
    .addHelpText(
      'after',
      `\nExit codes: 0 no verdict changes, 1 verdicts change, 2 usage or input error.\nExample:\n  ${ctx.displayName} diff -f world-before/ -f world-after/ --port tcp/443\n`,
    )
    .action(async (opts: DiffOptions) => {
      if (opts.filename.length !== 2) {
        throw new CliError(
          `${ctx.displayName} diff: give exactly two inputs, -f OLD -f NEW (got ${opts.filename.length}); ` +
            'each may be a file or a directory',
        );
      }
      if (opts.filename.every((f) => f === '-')) {
        throw new CliError(`${ctx.displayName} diff: only one of OLD and NEW can be '-'`);
      }
      const [oldPath, newPath] = opts.filename as [string, string];
      const oldWorld = await loadValidWorld([oldPath], ctx);
      const newWorld = await loadValidWorld([newPath], ctx);
      const ports = portsOrDefault(opts.port, oldWorld, newWorld);
      if (ports.length === 0) throw new CliError('no ports to probe: give --port PROTO/N');
      const externals = opts.external ?? [];
      const reference = engineFor('reference');
      const d = diffMatrices(
        await reference({ world: oldWorld, ports, externals }),
        await reference({ world: newWorld, ports, externals }),
      );
      if (opts.output === 'json') await writeAll(ctx.stdout, diffJson(d));
      else ctx.stdout.write(diffText(d));
      ctx.exitCode = d.changes.length > 0 ? EXIT_FINDINGS : EXIT_OK;
    });
}
