/**
 * The conformance data and the helpers that read it: a broken expected.json
 * must be an error naming the file and field, never a silently smaller suite.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  compare,
  enginesFrom,
  loadCases,
  matrixArgs,
  parseExpected,
  parseMatrix,
  probeKey,
  type ConformanceCase,
} from './cases.js';

const here = dirname(fileURLToPath(import.meta.url));

const valid = {
  source: 'upstream file: test',
  ports: ['tcp/80', 'udp/53'],
  externals: [],
  expect: [{ from: 'default/x/a', to: 'default/x/b', port: 'tcp/80', verdict: 'Deny' }],
};
const parse = (o: unknown): ReturnType<typeof parseExpected> =>
  parseExpected('case/expected.json', JSON.stringify(o));

describe('parseExpected', () => {
  it('reads a valid case; base defaults to true', () => {
    const e = parse(valid);
    expect(e.base).toBe(true);
    expect(e.expect).toEqual(valid.expect);
  });

  it.each([
    [{ ...valid, source: '' }, 'case/expected.json: .source: expected a non-empty string'],
    [
      { ...valid, ports: ['http/80'] },
      'case/expected.json: ports: "http/80" is not <tcp|udp|sctp>/<port>',
    ],
    [{ ...valid, expect: [] }, 'case/expected.json: expect: expected a non-empty list'],
    [
      { ...valid, expect: [{ ...valid.expect[0], port: 'tcp/81' }] },
      'case/expected.json: expect[0].port: "tcp/81" is not in ports',
    ],
    [
      { ...valid, expect: [{ ...valid.expect[0], verdict: 'Drop' }] },
      'case/expected.json: expect[0].verdict: expected Allow or Deny',
    ],
    [
      { ...valid, expect: [valid.expect[0], valid.expect[0]] },
      'case/expected.json: expect[1]: duplicate probe default/x/a -> default/x/b tcp/80',
    ],
    [{ ...valid, base: 'no' }, 'case/expected.json: base: expected a boolean'],
  ])('rejects %j', (input, message) => {
    expect(() => parse(input)).toThrow(message);
  });

  it('rejects text that is not JSON', () => {
    expect(() => parseExpected('f.json', '{')).toThrow(/^f\.json: not JSON/);
  });
});

describe('comparing the CLI answer', () => {
  const c: ConformanceCase = {
    id: 's/n',
    suite: 's',
    source: 'src',
    files: ['base.yaml', 'world.yaml'],
    ports: ['tcp/80'],
    externals: ['10.0.0.7'],
    expect: [
      { from: 'default/x/a', to: 'default/x/b', port: 'tcp/80', verdict: 'Deny' },
      { from: 'default/x/b', to: 'ip:10.0.0.7', port: 'tcp/80', verdict: 'Allow' },
    ],
  };
  const output = (verdict: string): string =>
    JSON.stringify({
      probes: [
        {
          from: 'default/x/a',
          to: 'default/x/b',
          protocol: 'TCP',
          port: 80,
          verdict,
          egress: {},
          ingress: {},
        },
      ],
    });

  it('builds the matrix command line', () => {
    expect(matrixArgs(c, 'compiled')).toEqual([
      'matrix',
      '--engine',
      'compiled',
      '-f',
      'base.yaml',
      '-f',
      'world.yaml',
      '--port',
      'tcp/80',
      '--external',
      '10.0.0.7',
      '-o',
      'json',
    ]);
  });

  it('reports a wrong verdict and a probe missing from the output', () => {
    const got = compare(c, parseMatrix(output('Allow')));
    expect(got.map((m) => [probeKey(m.probe.from, m.probe.to, m.probe.port), m.got])).toEqual([
      ['default/x/a -> default/x/b tcp/80', 'Allow'],
      ['default/x/b -> ip:10.0.0.7 tcp/80', 'missing'],
    ]);
  });

  it('finds nothing when every probe agrees', () => {
    expect(compare({ ...c, expect: [c.expect[0]!] }, parseMatrix(output('Deny')))).toEqual([]);
  });

  it('rejects output without a probes list', () => {
    expect(() => parseMatrix('{}')).toThrow('matrix output has no "probes" list');
  });
});

describe('enginesFrom', () => {
  it('defaults to the reference and compiled engines and reads a list', () => {
    expect(enginesFrom(undefined)).toEqual(['reference', 'compiled']);
    expect(enginesFrom('reference, compiled')).toEqual(['reference', 'compiled']);
  });
  it('rejects an unknown engine', () => {
    expect(() => enginesFrom('fast')).toThrow('"fast" is not an engine');
  });
});

describe('the translated suites', () => {
  const cases = loadCases(here);

  it('every world names the upstream source its expectations come from', () => {
    const bad = cases.filter((c) => {
      const world = readFileSync(join(here, 'cases', c.id, 'world.yaml'), 'utf8');
      return !world.startsWith(`# ${c.source}`.slice(0, 60));
    });
    expect(bad.map((c) => c.id)).toEqual([]);
  });

  it('holds every suite the docs list, each with allowed and denied probes', () => {
    const suites = new Map<string, Set<string>>();
    for (const c of cases) {
      const s = suites.get(c.suite) ?? new Set<string>();
      for (const e of c.expect) s.add(e.verdict);
      suites.set(c.suite, s);
    }
    expect([...suites.keys()].sort()).toEqual([
      'kubernetes-docs',
      'netpol-e2e',
      'netpol-e2e-ipv6',
      'network-policy-api',
      'network-policy-api-ipv6',
      'network-policy-api-v1alpha1',
    ]);
    for (const verdicts of suites.values()) expect([...verdicts].sort()).toEqual(['Allow', 'Deny']);
  });
});
