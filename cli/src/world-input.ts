/**
 * Reading `-f` inputs into a World for the commands that evaluate one.
 * Invalid input is an input error (exit 2) with every diagnostic printed;
 * warnings go to stderr and do not stop the command.
 */
import {
  formatDiagnostic,
  loadWorldFromTexts,
  readInputs,
  type Diagnostic,
  type World,
} from '../../policy-compiler/src/index.js';
import { CliError, EXIT_USAGE, type CliContext } from './context.js';

export interface LoadedInputs {
  readonly world: World;
  readonly diagnostics: readonly Diagnostic[];
  /** Text of every input read, by file name as diagnostics name it. */
  readonly texts: ReadonlyMap<string, string>;
}

/** Reads and loads; returns every diagnostic, errors included (for lint). */
export async function loadInputs(paths: readonly string[], ctx: CliContext): Promise<LoadedInputs> {
  const read = await readInputs([...paths], paths.includes('-') ? ctx.stdin() : undefined);
  const loaded = loadWorldFromTexts(read.inputs);
  return {
    world: loaded.world,
    diagnostics: [...read.diagnostics, ...loaded.diagnostics],
    texts: new Map(read.inputs.map((i) => [i.file, i.text])),
  };
}

export const isError = (d: Diagnostic): boolean => d.severity === 'error';

/** Loads a world that must be valid: errors end the command with exit 2. */
export async function loadValidWorld(paths: readonly string[], ctx: CliContext): Promise<World> {
  const { world, diagnostics } = await loadInputs(paths, ctx);
  const errors = diagnostics.filter(isError);
  if (errors.length > 0) {
    const text = errors.map((d) => formatDiagnostic(d)).join('\n');
    throw new CliError(
      `${text}\n${ctx.displayName}: ${errors.length} error${errors.length === 1 ? '' : 's'} in the input ` +
        `(run '${ctx.displayName} lint' for details)`,
      EXIT_USAGE,
    );
  }
  for (const d of diagnostics) ctx.stderr.write(`${formatDiagnostic(d)}\n`);
  return world;
}
