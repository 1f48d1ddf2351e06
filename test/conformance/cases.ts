/**
 * The conformance cases as data (docs/conformance.md): reading them, and comparing
 * what `palisade matrix -o json` answered with what upstream asserts.
 * Pure apart from reading the case files; the test file spawns the CLI.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export type Verdict = 'Allow' | 'Deny';

export interface ExpectedProbe {
  readonly from: string;
  readonly to: string;
  /** `tcp/80`, `udp/53`, `sctp/9003`. */
  readonly port: string;
  readonly verdict: Verdict;
  readonly note?: string;
}

export interface ConformanceCase {
  /** `<suite>/<name>`, the directory under cases/. */
  readonly id: string;
  readonly suite: string;
  /** Upstream file, test and revision the expectations come from. */
  readonly source: string;
  /** The files passed to `palisade matrix -f`, in order. */
  readonly files: readonly string[];
  readonly ports: readonly string[];
  readonly externals: readonly string[];
  readonly expect: readonly ExpectedProbe[];
}

/** A probe of a case that fails because of the implementation, recorded in known-failures.json. */
export interface KnownFailure {
  readonly case: string;
  /** The engine that fails; absent = reference. */
  readonly engine?: Engine;
  /** Absent: the whole case fails (the CLI rejects the world); present: this probe gives the wrong verdict. */
  readonly probe?: { readonly from: string; readonly to: string; readonly port: string };
  readonly expected?: Verdict;
  readonly got?: string;
  /** The upstream sentence (or API reference text) the expectation encodes. */
  readonly upstream: string;
  readonly reason: string;
}

export interface MatrixProbe {
  readonly from: string;
  readonly to: string;
  readonly protocol: string;
  readonly port: number;
  readonly verdict: string;
}

export interface Mismatch {
  readonly probe: ExpectedProbe;
  /** The verdict the CLI gave, or `missing` when the probe is not in its output. */
  readonly got: string;
}

const PORT = /^(tcp|udp|sctp)\/([0-9]{1,5})$/;

export const probeKey = (from: string, to: string, port: string): string =>
  `${from} -> ${to} ${port}`;

function fail(file: string, what: string): never {
  throw new Error(`${file}: ${what}`);
}

function stringField(
  file: string,
  obj: Record<string, unknown>,
  key: string,
  path: string,
): string {
  const v = obj[key];
  if (typeof v !== 'string' || v.length === 0)
    fail(file, `${path}.${key}: expected a non-empty string`);
  return v;
}

function stringList(file: string, obj: Record<string, unknown>, key: string): string[] {
  const v = obj[key];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
    fail(file, `${key}: expected a list of strings`);
  return v as string[];
}

/** The engines every case runs with unless PALISADE_CONFORMANCE_ENGINES says otherwise (datapath needs root). */
export const DEFAULT_ENGINES: readonly Engine[] = ['reference', 'compiled'];

/** PALISADE_CONFORMANCE_ENGINES=reference,datapath → the engines to run every case with. */
export function enginesFrom(value: string | undefined): Engine[] {
  if (value === undefined || value.trim() === '') return [...DEFAULT_ENGINES];
  const list = value.split(',').map((s) => s.trim());
  for (const e of list) {
    if (!(ENGINES as readonly string[]).includes(e)) {
      throw new Error(
        `PALISADE_CONFORMANCE_ENGINES: "${e}" is not an engine (allowed: ${ENGINES.join(', ')})`,
      );
    }
  }
  return list as Engine[];
}

/** Reads and checks one expected.json; every mistake in the data is an error naming the file and field. */
export function parseExpected(
  file: string,
  text: string,
): Omit<ConformanceCase, 'id' | 'suite' | 'files'> & { base: boolean } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(file, `not JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail(file, 'expected an object');
  const obj = raw as Record<string, unknown>;
  const source = stringField(file, obj, 'source', '');
  const ports = stringList(file, obj, 'ports');
  for (const p of ports)
    if (!PORT.test(p)) fail(file, `ports: "${p}" is not <tcp|udp|sctp>/<port>`);
  const externals = stringList(file, obj, 'externals');
  const base = obj['base'] === undefined ? true : obj['base'];
  if (typeof base !== 'boolean') fail(file, 'base: expected a boolean');
  const list = obj['expect'];
  if (!Array.isArray(list) || list.length === 0) fail(file, 'expect: expected a non-empty list');
  const seen = new Set<string>();
  const expect = list.map((item: unknown, i): ExpectedProbe => {
    const path = `expect[${i}]`;
    if (typeof item !== 'object' || item === null) fail(file, `${path}: expected an object`);
    const e = item as Record<string, unknown>;
    const from = stringField(file, e, 'from', path);
    const to = stringField(file, e, 'to', path);
    const port = stringField(file, e, 'port', path);
    if (!ports.includes(port)) fail(file, `${path}.port: "${port}" is not in ports`);
    const verdict = e['verdict'];
    if (verdict !== 'Allow' && verdict !== 'Deny')
      fail(file, `${path}.verdict: expected Allow or Deny`);
    const key = probeKey(from, to, port);
    if (seen.has(key)) fail(file, `${path}: duplicate probe ${key}`);
    seen.add(key);
    const note = typeof e['note'] === 'string' ? e['note'] : undefined;
    return note === undefined ? { from, to, port, verdict } : { from, to, port, verdict, note };
  });
  return { source, ports, externals, expect, base };
}

/** Every case under `<root>/cases/<suite>/<name>/`, sorted. */
export function loadCases(root: string): ConformanceCase[] {
  const casesDir = join(root, 'cases');
  const out: ConformanceCase[] = [];
  for (const suite of readdirSync(casesDir).sort()) {
    for (const name of readdirSync(join(casesDir, suite)).sort()) {
      const dir = join(casesDir, suite, name);
      const expectedFile = join(dir, 'expected.json');
      const world = join(dir, 'world.yaml');
      if (!existsSync(expectedFile) || !existsSync(world))
        fail(dir, 'a case needs world.yaml and expected.json');
      const parsed = parseExpected(expectedFile, readFileSync(expectedFile, 'utf8'));
      const baseFile = join(root, 'base', `${suite}.yaml`);
      if (parsed.base && !existsSync(baseFile))
        fail(expectedFile, `base workloads ${baseFile} do not exist`);
      out.push({
        id: `${suite}/${name}`,
        suite,
        source: parsed.source,
        files: parsed.base ? [baseFile, world] : [world],
        ports: parsed.ports,
        externals: parsed.externals,
        expect: parsed.expect,
      });
    }
  }
  return out;
}

/** The evaluation engines of `palisade matrix --engine` (DESIGN.md §4). */
export const ENGINES = ['reference', 'compiled', 'datapath'] as const;
export type Engine = (typeof ENGINES)[number];

/** The `palisade matrix` arguments for one case. */
export function matrixArgs(c: ConformanceCase, engine: Engine = 'reference'): string[] {
  return [
    'matrix',
    '--engine',
    engine,
    ...c.files.flatMap((f) => ['-f', f]),
    ...c.ports.flatMap((p) => ['--port', p]),
    ...c.externals.flatMap((ip) => ['--external', ip]),
    '-o',
    'json',
  ];
}

/** Parses the CLI's JSON (DESIGN.md §4) into probe key → verdict. */
export function parseMatrix(stdout: string): Map<string, string> {
  const doc = JSON.parse(stdout) as { probes?: unknown };
  if (!Array.isArray(doc.probes)) throw new Error('matrix output has no "probes" list');
  const verdicts = new Map<string, string>();
  for (const p of doc.probes as MatrixProbe[]) {
    verdicts.set(
      probeKey(p.from, p.to, `${String(p.protocol).toLowerCase()}/${p.port}`),
      String(p.verdict),
    );
  }
  return verdicts;
}

/** Every expected probe whose verdict differs from (or is missing in) the CLI's answer. */
export function compare(c: ConformanceCase, verdicts: ReadonlyMap<string, string>): Mismatch[] {
  const out: Mismatch[] = [];
  for (const probe of c.expect) {
    const got = verdicts.get(probeKey(probe.from, probe.to, probe.port)) ?? 'missing';
    if (got !== probe.verdict) out.push({ probe, got });
  }
  return out;
}

export function describeMismatch(c: ConformanceCase, m: Mismatch): string {
  const note = m.probe.note ? ` (${m.probe.note})` : '';
  return `${c.id}: ${m.probe.from} -> ${m.probe.to} ${m.probe.port}: expected ${m.probe.verdict}, got ${m.got}${note}\n    upstream: ${c.source}`;
}

/** Reads known-failures.json (a list of KnownFailure); checks every entry names a real case. */
export function loadKnownFailures(file: string, cases: readonly ConformanceCase[]): KnownFailure[] {
  if (!existsSync(file)) return [];
  const raw = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (!Array.isArray(raw)) fail(file, 'expected a list');
  const ids = new Set(cases.map((c) => c.id));
  return raw.map((item: unknown, i): KnownFailure => {
    const e = item as Record<string, unknown>;
    const id = stringField(file, e, 'case', `[${i}]`);
    if (!ids.has(id)) fail(file, `[${i}].case: no case ${id}`);
    if (e['engine'] !== undefined && !(ENGINES as readonly unknown[]).includes(e['engine'])) {
      fail(file, `[${i}].engine: expected one of ${ENGINES.join(', ')}`);
    }
    stringField(file, e, 'upstream', `[${i}]`);
    stringField(file, e, 'reason', `[${i}]`);
    const probe = e['probe'] as Record<string, unknown> | undefined;
    if (probe !== undefined) {
      for (const k of ['from', 'to', 'port']) stringField(file, probe, k, `[${i}].probe`);
    }
    return e as unknown as KnownFailure;
  });
}
