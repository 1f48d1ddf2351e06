/**
 * Placeholders for commands whose issue has not landed yet: each answers a
 * clear "not built yet (issue N)" with exit 2 instead of a commander
 * "unknown command". The owning helper replaces its line in index.ts with the
 * real command.
 */
import type { Command } from 'commander';
import { CliError, type CliContext } from '../context.js';
import type { CommandRegistrar } from './registrar.js';

export function notBuilt(name: string, issue: number, summary: string): CommandRegistrar {
  return (program: Command, ctx: CliContext) => {
    program
      .command(name)
      .description(`${summary} (not built yet: issue ${issue})`)
      .allowUnknownOption(true)
      .allowExcessArguments(true)
      .helpOption(false)
      .action(() => {
        throw new CliError(`${ctx.displayName} ${name}: not built yet (issue ${issue})`);
      });
  };
}
