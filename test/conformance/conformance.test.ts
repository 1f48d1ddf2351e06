/**
 * Upstream conformance suites, translated into worlds + expected verdicts
 * (docs/conformance.md), run through the built CLI: `palisade matrix -o json`.
 * Sources: kubernetes-sigs/network-policy-api conformance tests (ANP/BANP/CNP),
 * the Kubernetes e2e NetworkPolicy truth tables and the NetworkPolicy concept page.
 *
 * Every case runs the built program (dist/cli/src/program.js, `runCli`, the
 * function dist/cli/src/main.js calls) in this process: one node start per
 * case would take minutes for 400 cases on two cores. The first case of every
 * suite is also run by spawning dist/cli/src/main.js, and must print the same
 * bytes with the same exit code; PALISADE_CONFORMANCE_SPAWN=all spawns the
 * binary for every case instead.
 *
 * Cases listed in known-failures.json are implementation bugs found by this
 * suite: they are reported loudly, and each must still fail (fixing one makes
 * this test fail until the entry is removed).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compare,
  describeMismatch,
  enginesFrom,
  loadCases,
  loadKnownFailures,
  matrixArgs,
  parseMatrix,
  probeKey,
  type ConformanceCase,
  type Engine,
  type KnownFailure,
} from './cases.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
// The built CLI; PALISADE_CLI points the suite at another build of it (e.g. a scratch outDir).
const cli = process.env['PALISADE_CLI'] ?? join(repo, 'dist', 'cli', 'src', 'main.js');
const program = join(dirname(cli), 'program.js');
const spawnAll = process.env['PALISADE_CONFORMANCE_SPAWN'] === 'all';
// reference and compiled by default; datapath (root) on request.
const engines = enginesFrom(process.env['PALISADE_CONFORMANCE_ENGINES']);
// The datapath engine loads real BPF programs per case (root, minutes), spawning every case
// takes minutes too; the in-process reference and compiled runs take seconds.
const runTimeout = engines.includes('datapath') || spawnAll ? 1_800_000 : 120_000 * engines.length;
const cases = loadCases(here);
const known = loadKnownFailures(join(here, 'known-failures.json'), cases);

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The shape of dist/cli/src/program.js that this suite uses (cli/src/program.ts, cli/src/context.ts). */
interface BuiltProgram {
  runCli(
    argv: readonly string[],
    ctx: {
      displayName: string;
      stdout: { write(t: string): unknown };
      stderr: { write(t: string): unknown };
      stdin(): NodeJS.ReadableStream;
      exitCode: number;
    },
  ): Promise<number>;
}

interface Job {
  readonly c: ConformanceCase;
  readonly engine: Engine;
}
const jobKey = (j: Job): string => `${j.engine}:${j.c.id}`;

async function runInProcess(built: BuiltProgram, { c, engine }: Job): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const ctx = {
    displayName: 'palisade',
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    stdin: (): NodeJS.ReadableStream => {
      throw new Error('conformance cases never read stdin');
    },
    exitCode: 0,
  };
  const code = await built.runCli(matrixArgs(c, engine), ctx);
  return { code, stdout, stderr };
}

function runSpawned({ c, engine }: Job): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [cli, ...matrixArgs(c, engine)],
      { cwd: repo, maxBuffer: 256 * 1024 * 1024, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** Runs `f` over the list, `parallel` at a time. */
async function pool<T, R>(
  list: readonly T[],
  parallel: number,
  f: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(list.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const i = next++;
      out[i] = await f(list[i] as T);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return out;
}

const jobs: Job[] = engines.flatMap((engine) => cases.map((c) => ({ c, engine })));
const results = new Map<string, Run>();
/**
 * Jobs also run as a process (unless all are, see above): the first case of
 * each suite with the first engine, and the first case with every other engine.
 */
const spawnChecked = spawnAll
  ? []
  : jobs.filter((j, i) => {
      const prev = jobs[i - 1];
      if (j.engine === engines[0]) return prev === undefined || prev.c.suite !== j.c.suite;
      return j.c === cases[0];
    });
const spawnedRuns = new Map<string, Run>();

beforeAll(async () => {
  if (!existsSync(cli) || !existsSync(program)) {
    throw new Error(
      `${cli} (and program.js beside it) do not exist: build first (npm run -s build)`,
    );
  }
  if (spawnAll) {
    const runs = await pool(jobs, 4, runSpawned);
    jobs.forEach((j, i) => results.set(jobKey(j), runs[i] as Run));
    return;
  }
  const built = (await import(pathToFileURL(program).href)) as BuiltProgram;
  if (typeof built.runCli !== 'function') throw new Error(`${program} does not export runCli`);
  // The spawned processes use the second core while this one runs the cases.
  const spawning = pool(spawnChecked, 1, runSpawned);
  for (const j of jobs) results.set(jobKey(j), await runInProcess(built, j));
  const runs = await spawning;
  spawnChecked.forEach((j, i) => spawnedRuns.set(jobKey(j), runs[i] as Run));
}, runTimeout);

afterAll(() => {
  if (known.length > 0) {
    const lines = known.map(
      (k) =>
        `  ${k.engine ?? 'reference'} ${k.case}${k.probe ? `: ${k.probe.from} -> ${k.probe.to} ${k.probe.port} expected ${k.expected ?? '?'}, got ${k.got ?? '?'}` : ''}\n    ${k.reason}`,
    );
    console.warn(
      `\nKNOWN CONFORMANCE FAILURES (${known.length}, test/conformance/known-failures.json):\n${lines.join('\n')}\n`,
    );
  }
});

function resultOf(j: Job): Run {
  const r = results.get(jobKey(j));
  if (!r) throw new Error(`${jobKey(j)}: the CLI was not run`);
  return r;
}

describe('conformance: the binary answers like the program', () => {
  for (const j of spawnChecked) {
    it(`${jobKey(j)}: node dist/cli/src/main.js prints what runCli prints`, () => {
      const spawned = spawnedRuns.get(jobKey(j));
      const inProcess = resultOf(j);
      expect(spawned, 'the binary was not run').toBeDefined();
      expect({ code: spawned?.code, stdout: spawned?.stdout }).toEqual({
        code: inProcess.code,
        stdout: inProcess.stdout,
      });
    });
  }
});

/** All mismatches of a case as text, or the CLI error when it did not answer. */
function failuresOf(j: Job, r: Run): { error?: string; mismatches: Map<string, string> } {
  const { c, engine } = j;
  if (r.code !== 0) {
    return {
      error: `${c.id}: palisade ${matrixArgs(c, engine).join(' ')} exited ${r.code}\n${r.stderr.trim()}\n    upstream: ${c.source}`,
      mismatches: new Map(),
    };
  }
  let verdicts: Map<string, string>;
  try {
    verdicts = parseMatrix(r.stdout);
  } catch (e) {
    return {
      error: `${c.id}: unreadable matrix output (engine ${engine}): ${(e as Error).message}`,
      mismatches: new Map(),
    };
  }
  const mismatches = new Map<string, string>();
  for (const m of compare(c, verdicts)) {
    mismatches.set(
      probeKey(m.probe.from, m.probe.to, m.probe.port),
      `[engine ${engine}] ${describeMismatch(c, m)}`,
    );
  }
  return { mismatches };
}

const suites = [...new Set(cases.map((c) => c.suite))];
for (const engine of engines) {
  for (const suite of suites) {
    describe(`conformance (${engine} engine): ${suite}`, () => {
      for (const c of cases.filter((x) => x.suite === suite)) {
        const mine: KnownFailure[] = known.filter(
          (k) => k.case === c.id && (k.engine ?? 'reference') === engine,
        );
        const wholeCase = mine.some((k) => k.probe === undefined);
        const knownProbes = new Set(
          mine.flatMap((k) => (k.probe ? [probeKey(k.probe.from, k.probe.to, k.probe.port)] : [])),
        );
        it(`${c.id}: ${c.expect.length} probes (${c.source})`, () => {
          const { error, mismatches } = failuresOf({ c, engine }, resultOf({ c, engine }));
          if (wholeCase) {
            // Known to fail as a whole: it must still fail, or the entry goes.
            expect(
              error !== undefined || mismatches.size > 0,
              `${c.id} (${engine}) now passes: remove it from test/conformance/known-failures.json`,
            ).toBe(true);
            return;
          }
          if (error !== undefined) expect.fail(error);
          const unexpected = [...mismatches]
            .filter(([k]) => !knownProbes.has(k))
            .map(([, text]) => text);
          const fixed = [...knownProbes].filter((k) => !mismatches.has(k));
          expect(
            unexpected,
            `${unexpected.length} probe(s) disagree with upstream:\n${unexpected.join('\n')}`,
          ).toEqual([]);
          expect(
            fixed,
            `now correct, remove from test/conformance/known-failures.json: ${fixed.join(', ')}`,
          ).toEqual([]);
        });
      }
    });
  }
}
