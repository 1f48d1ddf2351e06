// Pure parts of the CLI: flag parsers, the matrix grid and the matrix diff,
// checked on small worlds evaluated by the reference engine.
import { describe, expect, it } from 'vitest';
import { Command, InvalidArgumentError } from 'commander';
import { CliError, type CliContext } from '../../cli/src/context.js';
import { notBuilt } from '../../cli/src/commands/not-built.js';
import { jsonArrayLines, writeAll } from '../../cli/src/output.js';
import { evaluateMatrix, prepareWorld, type Diagnostic } from '../../policy-compiler/src/index.js';
import { toSarif } from '../../cli/src/render/sarif.js';
import { collectExternal, parsePortSpec } from '../../cli/src/args.js';
import { defaultPorts } from '../../cli/src/commands/options.js';
import { diffMatrices } from '../../cli/src/commands/diff.js';
import { renderMatrixGrid, renderMatrixWide } from '../../cli/src/render/matrix-table.js';
import { buildWorld, np, npPods, pod, sel, tcp } from '../support/world-builder.js';

describe('port flags', () => {
  it('parses PROTO/N case-insensitively and a bare number as TCP', () => {
    expect(parsePortSpec('tcp/80')).toEqual({ protocol: 'TCP', port: 80 });
    expect(parsePortSpec('UDP/53')).toEqual({ protocol: 'UDP', port: 53 });
    expect(parsePortSpec('sctp/9000')).toEqual({ protocol: 'SCTP', port: 9000 });
    expect(parsePortSpec('8080')).toEqual({ protocol: 'TCP', port: 8080 });
  });
  it.each(['tcp/0', 'tcp/65536', 'icmp/1', 'tcp/', 'tcp/http', '80-90'])(
    'rejects %s with what is allowed',
    (text) => {
      expect(() => parsePortSpec(text)).toThrow(InvalidArgumentError);
      expect(() => parsePortSpec(text)).toThrow(/allowed: PROTO\/N/);
    },
  );
  it('accepts external IPs with or without ip: and rejects names', () => {
    expect(collectExternal('ip:2001:db8::1', ['1.2.3.4'])).toEqual(['1.2.3.4', '2001:db8::1']);
    expect(() => collectExternal('example.com')).toThrow(/not an IPv4 or IPv6 address/);
  });
});

const world = buildWorld({
  pods: [
    pod('c/prod/a', { labels: { app: 'a' }, ip: '10.0.0.1', ports: [{ port: 80, name: 'http' }] }),
    pod('c/prod/b', {
      labels: { app: 'b' },
      ip: '10.0.0.2',
      ports: [{ port: 53, protocol: 'UDP' }, { port: 80 }],
    }),
    pod('c/prod/c', { labels: { app: 'c' }, ip: '10.0.0.3' }),
  ],
  networkPolicies: [
    // b accepts only a, on TCP 80.
    np('c/prod/b-ingress', {
      podSelector: sel({ app: 'b' }),
      ingress: [{ peers: [npPods(sel({ app: 'a' }))], ports: [tcp(80)] }],
    }),
  ],
});

describe('default ports', () => {
  it('are the distinct container ports, TCP before UDP, by number', () => {
    expect(defaultPorts(world)).toEqual([
      { protocol: 'TCP', port: 80 },
      { protocol: 'UDP', port: 53 },
    ]);
  });
});

describe('matrix grid', () => {
  const verdicts = evaluateMatrix(prepareWorld(world), {
    ports: [{ protocol: 'TCP', port: 80 }],
    externals: [],
  });
  it('has one numbered row per source and a cell per destination', () => {
    const lines = renderMatrixGrid(verdicts).split('\n');
    expect(lines[0]).toBe('PORT TCP/80');
    expect(lines[1]).toMatch(/^#\s+FROM \\ TO\s+1 2 3$/);
    // a reaches b (allowed by b-ingress) and c; c is denied into b; self cells are blank.
    expect(lines[2]).toMatch(/^1\s+c\/prod\/a\s+ {2}\. \.$/);
    expect(lines[3]).toMatch(/^2\s+c\/prod\/b\s+\. {3}\.$/);
    expect(lines[4]).toMatch(/^3\s+c\/prod\/c\s+\. X$/);
  });
  it('wide names the deciding rule of each direction', () => {
    const row = renderMatrixWide(verdicts)
      .split('\n')
      .find((l) => l.startsWith('c/prod/c') && l.includes('c/prod/b'));
    expect(row).toMatch(/Deny\s+Allow default-allow\s+Deny isolated\(prod\/b-ingress\)/);
  });
});

describe('matrix diff', () => {
  const ports = [{ protocol: 'TCP', port: 80 }] as const;
  const before = evaluateMatrix(prepareWorld(world), { ports, externals: [] });
  it('reports nothing for the same world', () => {
    const d = diffMatrices(before, before);
    expect(d.changes).toEqual([]);
    expect(d.onlyOld + d.onlyNew).toBe(0);
  });
  it('reports exactly the probes whose verdict changed, and added endpoints', () => {
    const after = buildWorld({
      pods: [...world.pods, pod('c/prod/d', { labels: { app: 'd' }, ip: '10.0.0.4' })],
      networkPolicies: [], // b-ingress removed: c -> b becomes allowed
    });
    const d = diffMatrices(before, evaluateMatrix(prepareWorld(after), { ports, externals: [] }));
    expect(
      d.changes.map((c) => [c.old.probe.from, c.new.probe.to, c.old.verdict, c.new.verdict]),
    ).toEqual([['c/prod/c', 'c/prod/b', 'Deny', 'Allow']]);
    expect(d.endpointsAdded).toEqual(['c/prod/d']);
    expect(d.onlyNew).toBe(6); // d to and from each of a, b, c
    expect(d.onlyOld).toBe(0);
  });
});

describe('placeholders of commands not built yet', () => {
  it('answer "not built yet (issue N)" as a usage error, whatever the arguments', async () => {
    const ctx: CliContext = {
      displayName: 'palisade',
      stdout: { write: () => true },
      stderr: { write: () => true },
      stdin: () => process.stdin,
      exitCode: 0,
    };
    const program = new Command().exitOverride();
    notBuilt('lab', 8, 'the lab')(program, ctx);
    const run = program.parseAsync(['lab', 'up', '--clusters', '3'], { from: 'user' });
    await expect(run).rejects.toThrow(CliError);
    await expect(run).rejects.toMatchObject({
      exitCode: 2,
      message: 'palisade lab: not built yet (issue 8)',
    });
  });
});

describe('large JSON output', () => {
  it('is one valid document, one item a line, extra keys after the array', async () => {
    const chunks: string[] = [];
    await writeAll(
      { write: (t: string) => chunks.push(t) },
      jsonArrayLines('probes', [{ a: 1 }, { b: [2] }], { n: 2 }),
    );
    const text = chunks.join('');
    expect(JSON.parse(text)).toEqual({ probes: [{ a: 1 }, { b: [2] }], n: 2 });
    expect(text).toBe('{"probes":[\n{"a":1},\n{"b":[2]}\n],"n":2}\n');
  });
  it('an empty array is still valid JSON', async () => {
    let text = '';
    await writeAll({ write: (t: string) => (text += t) }, jsonArrayLines('changes', []));
    expect(JSON.parse(text)).toEqual({ changes: [] });
  });
});

describe('SARIF fingerprints', () => {
  const diag = (line: number): Diagnostic => ({
    severity: 'error',
    code: 'PAL024',
    file: 'p.yaml',
    line,
    col: 13,
    endLine: line,
    endCol: 17,
    path: 'spec.priority',
    message: 'must be at most 1000',
  });
  const text = (blankLines: number): string =>
    `${'\n'.repeat(blankLines)}spec:\n  priority: 1001\n`;
  const hashOf = (line: number, blank: number): string =>
    toSarif([diag(line)], new Map([['p.yaml', text(blank)]])).runs[0]!.results[0]!
      .partialFingerprints.primaryLocationLineHash;

  it('survive lines moving, and change when the offending line changes', () => {
    expect(hashOf(2, 0)).toBe(hashOf(5, 3));
    const other = toSarif([diag(2)], new Map([['p.yaml', 'spec:\n  priority: 2000\n']])).runs[0]!
      .results[0]!.partialFingerprints.primaryLocationLineHash;
    expect(other).not.toBe(hashOf(2, 0));
  });
  it('count identical findings so each stays distinct', () => {
    const r = toSarif([diag(2), diag(2)], new Map([['p.yaml', text(0)]])).runs[0]!.results;
    const [a, b] = r.map((x) => x.partialFingerprints.primaryLocationLineHash);
    expect(a?.replace(/:1$/, ':2')).toBe(b);
  });
  it('leave out the region of a finding without a position', () => {
    const r = toSarif([{ ...diag(0), col: 0, endLine: 0, endCol: 0 }], new Map()).runs[0]!
      .results[0]!;
    expect(r.locations[0]!.physicalLocation).toEqual({ artifactLocation: { uri: 'p.yaml' } });
  });
});
