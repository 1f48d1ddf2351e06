/**
 * Runs the BUILT command-line tool (dist/, made by `npm run -s build`, which
 * scripts/test.sh runs through scripts/setup.sh) as a child process, the way
 * users and CI run it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const MAIN = resolve(ROOT, 'dist/cli/src/main.js');
export const KUBECTL_MAIN = resolve(ROOT, 'dist/cli/src/kubectl-main.js');
export const EXAMPLES = 'examples/world';

/** Fails the suite with what to do when the build is missing. */
export function requireBuiltCli(): void {
  for (const f of [MAIN, KUBECTL_MAIN]) {
    if (!existsSync(f)) {
      throw new Error(
        `${f} is missing: build first with \`npm run -s build\` (scripts/test.sh does)`,
      );
    }
  }
}

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function palisade(
  args: readonly string[],
  o: { input?: string; bin?: string } = {},
): CliRun {
  const r = spawnSync(process.execPath, [o.bin ?? MAIN, ...args], {
    cwd: ROOT,
    input: o.input ?? '',
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, PALISADE_DEBUG: '' },
  });
  if (r.error !== undefined) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Output of a failing command never carries a JavaScript stack trace. */
export const STACK_TRACE = /\n\s+at .+:\d+:\d+\)?/;
