/**
 * `palisade verdict`: one probe, with the decision path of both directions.
 * Exit 0 when the connection is allowed, 1 when it is denied.
 */
import type { Command } from 'commander';
import { evaluate, formatExplanation, prepareWorld } from '../../../policy-compiler/src/index.js';
import { parsePortSpec, type PortSpec } from '../args.js';
import { EXIT_FINDINGS, EXIT_OK, type CliContext } from '../context.js';
import { loadValidWorld } from '../world-input.js';
import { filenameOption, outputOption } from './options.js';

interface VerdictOptions {
  filename: string[];
  from: string;
  to: string;
  port: PortSpec;
  output: 'text' | 'json';
}

export function verdict(program: Command, ctx: CliContext): void {
  program
    .command('verdict')
    .description(
      'would FROM reach TO on PORT? The verdict and the decision path (exit 0 allowed, 1 denied)',
    )
    .addOption(filenameOption())
    .requiredOption(
      '--from <id>',
      'source: <cluster>/<namespace>/<pod>, node:<cluster>/<node> or ip:<addr>',
    )
    .requiredOption('--to <id>', 'destination, same forms as --from')
    .requiredOption('--port <proto/n>', 'destination port, e.g. tcp/80', parsePortSpec)
    .addOption(outputOption(['text', 'json'], 'text'))
    .addHelpText(
      'after',
      `\nExit codes: 0 allowed, 1 denied, 2 usage or input error.\nExample:\n  ${ctx.displayName} verdict -f examples/world --from east/shop/api-0 --to east/payments/ledger-0 --port tcp/9443\n`,
    )
    .action(async (opts: VerdictOptions) => {
      const world = await loadValidWorld(opts.filename, ctx);
      // Unknown or malformed ids throw SemanticsError: an input error (exit 2).
      const result = evaluate(prepareWorld(world), {
        from: opts.from,
        to: opts.to,
        protocol: opts.port.protocol,
        port: opts.port.port,
      });
      ctx.stdout.write(
        opts.output === 'json'
          ? `${JSON.stringify(result, null, 2)}\n`
          : `${formatExplanation(result)}\n`,
      );
      ctx.exitCode = result.verdict === 'Allow' ? EXIT_OK : EXIT_FINDINGS;
    });
}
