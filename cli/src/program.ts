/**
 * The `palisade` command-line program: one commander tree, the commands
 * registered from commands/index.ts, and one top-level handler that turns
 * every failure into a message on stderr plus an exit code (0 ok, 1 findings
 * or denied, 2 usage or input error) — never a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { SemanticsError } from '../../policy-compiler/src/index.js';
import { commands } from './commands/index.js';
import { CliError, EXIT_USAGE, type CliContext } from './context.js';
import { PALISADE_VERSION } from './version.js';

export function buildProgram(ctx: CliContext): Command {
  const program = new Command();
  program
    .name(ctx.displayName)
    .description(
      'Multicluster network policy engine for Kubernetes: validate policies, explain verdicts, ' +
        'print reachability matrices.',
    )
    .version(PALISADE_VERSION, '--version', 'print the version')
    // Set before any subcommand exists: commander copies these settings to
    // each subcommand when it is created.
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    })
    .showHelpAfterError(`(run '${ctx.displayName} --help' for usage)`)
    .helpCommand(true);
  for (const register of commands) register(program, ctx);
  return program;
}

/** Runs the program on `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    return exitCodeOf(err, ctx);
  }
}

function exitCodeOf(err: unknown, ctx: CliContext): number {
  if (err instanceof CommanderError) {
    // commander has already printed its message (or the help text). Help and
    // --version exit 0; every other commander error is a usage error: 2, not
    // commander's default 1, which means "findings" here.
    return err.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (err instanceof CliError) {
    const msg = err.message.endsWith('\n') ? err.message : `${err.message}\n`;
    ctx.stderr.write(msg);
    return err.exitCode;
  }
  if (err instanceof SemanticsError) {
    // Bad input the evaluator found (unknown endpoint, unprobeable pair).
    ctx.stderr.write(`${ctx.displayName}: ${err.message}\n`);
    return EXIT_USAGE;
  }
  // A bug of ours, not the user's: say so briefly; the stack only on request.
  const text = err instanceof Error ? err.message : String(err);
  ctx.stderr.write(`${ctx.displayName}: internal error: ${text}\n`);
  if (process.env.PALISADE_DEBUG && err instanceof Error && err.stack) {
    ctx.stderr.write(`${err.stack}\n`);
  }
  return EXIT_USAGE;
}

/**
 * The context of a real process: the standard streams. A reader that goes
 * away early (`palisade matrix | head`) ends the program quietly, as SIGPIPE
 * would a C tool, instead of an unhandled EPIPE with a stack trace.
 */
export function processContext(displayName: string): CliContext {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      process.stderr.write(`${displayName}: cannot write output: ${err.code ?? err.message}\n`);
      process.exit(EXIT_USAGE);
    });
  }
  return {
    displayName,
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: () => process.stdin,
    exitCode: 0,
  };
}
