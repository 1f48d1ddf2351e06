/**
 * Runs the BUILT command-line tool (dist/, made by `npm run -s build`, which
 * scripts/test.sh runs through scripts/setup.sh) as a child process, the way
 * users and CI run it.
 */
import { spawn } from 'node:child_process';
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

/**
 * Runs the CLI to completion. Asynchronous, so tests marked concurrent run
 * several CLI processes at once (each mostly waits on module loading).
 */
export function palisade(
  args: readonly string[],
  o: { input?: string; bin?: string } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [o.bin ?? MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, PALISADE_DEBUG: '' },
      timeout: 60_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.on('error', () => undefined); // the CLI may exit before reading stdin
    child.stdin.end(o.input ?? '');
  });
}

/** Output of a failing command never carries a JavaScript stack trace. */
export const STACK_TRACE = /\n\s+at .+:\d+:\d+\)?/;
