/**
 * `palisade lint`: validate world and policy files the way the API server
 * would. Exit 0 when there is no error (warnings allowed unless --strict),
 * 1 when there are findings, 2 on usage errors.
 */
import type { Command } from 'commander';
import { formatDiagnostic, type Diagnostic } from '../../../policy-compiler/src/index.js';
import { EXIT_FINDINGS, EXIT_OK, type CliContext } from '../context.js';
import { toSarif } from '../render/sarif.js';
import { loadInputs } from '../world-input.js';
import { filenameOption, outputOption } from './options.js';

interface LintOptions {
  filename: string[];
  output: 'text' | 'json' | 'sarif';
  strict?: boolean;
}

export interface LintSummary {
  readonly files: number;
  readonly errors: number;
  readonly warnings: number;
}

function summarize(files: number, ds: readonly Diagnostic[]): LintSummary {
  const errors = ds.filter((d) => d.severity === 'error').length;
  return { files, errors, warnings: ds.length - errors };
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function lint(program: Command, ctx: CliContext): void {
  program
    .command('lint')
    .description('validate world and policy files like the API server would (exit 1 on findings)')
    .addOption(filenameOption('policy or world'))
    .addOption(outputOption(['text', 'json', 'sarif'], 'text'))
    .option('--strict', 'warnings count as findings too (exit 1)')
    .addHelpText(
      'after',
      `\nExit codes: 0 no errors, 1 findings, 2 usage error.\nExamples:\n  ${ctx.displayName} lint -f examples/world\n  ${ctx.displayName} lint -f policies/ -o sarif > palisade.sarif\n`,
    )
    .action(async (opts: LintOptions) => {
      const loaded = await loadInputs(opts.filename, ctx);
      const ds = loaded.diagnostics;
      const summary = summarize(loaded.texts.size, ds);
      if (opts.output === 'json') {
        ctx.stdout.write(`${JSON.stringify({ diagnostics: ds, summary }, null, 2)}\n`);
      } else if (opts.output === 'sarif') {
        ctx.stdout.write(`${JSON.stringify(toSarif(ds, loaded.texts), null, 2)}\n`);
      } else {
        for (const d of ds) ctx.stdout.write(`${formatDiagnostic(d)} [${d.code}]\n`);
        ctx.stdout.write(
          `${plural(summary.errors, 'error')}, ${plural(summary.warnings, 'warning')} ` +
            `in ${plural(summary.files, 'file')}\n`,
        );
      }
      const findings = summary.errors + (opts.strict === true ? summary.warnings : 0);
      ctx.exitCode = findings > 0 ? EXIT_FINDINGS : EXIT_OK;
    });
}
