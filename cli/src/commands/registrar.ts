import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** Adds one command (and its subcommands) to the program. */
export type CommandRegistrar = (program: Command, ctx: CliContext) => void;
