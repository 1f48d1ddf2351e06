// The built `palisade` / `kubectl-palisade` binaries on the example world:
// exit codes, output shapes (text, json, sarif, table) and real verdicts that
// specific example policies decide (examples/README.md explains them).
import { cpSync, mkdtempSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import {
  EXAMPLES,
  KUBECTL_MAIN,
  MAIN,
  palisade,
  requireBuiltCli,
  ROOT,
  STACK_TRACE,
} from './run-cli.js';

const INVALID = 'test/cli/fixtures/invalid-policies.yaml';

interface Rule {
  kind: string;
  cluster: string | null;
  namespace: string | null;
  name: string;
  tier: string;
  direction: string;
  ruleIndex: number;
  ruleName: string;
}
type Decision =
  | { kind: 'rule'; action: string; rule: Rule }
  | { kind: 'default'; verdict: string; isolatedBy: { namespace: string; name: string }[] };
interface Direction {
  verdict: string;
  decidedBy: Decision;
  staged: { verdict: string; decidedBy: Decision } | null;
}
interface ProbeJson {
  from: string;
  to: string;
  protocol: string;
  port: number;
  verdict: string;
  egress: Direction;
  ingress: Direction;
}

const ruleOf = (d: Decision): Rule => {
  if (d.kind !== 'rule') throw new Error(`expected a rule decision, got ${JSON.stringify(d)}`);
  return d.rule;
};

let tmp: string;
beforeAll(() => {
  requireBuiltCli();
  tmp = mkdtempSync(join(tmpdir(), 'palisade-cli-'));
});
afterAll(() => {
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

/** The example world as one YAML stream (for `-f -`). */
function examplesText(): string {
  const files = [
    'clusters.yaml',
    'workloads.yaml',
    ...readdirSync(join(ROOT, EXAMPLES, 'policies')).map((f) => `policies/${f}`),
  ];
  return files.map((f) => readFileSync(join(ROOT, EXAMPLES, f), 'utf8')).join('\n---\n');
}

describe.concurrent('lint', () => {
  it('the example world is clean: exit 0, no findings', async () => {
    const r = await palisade(['lint', '-f', EXAMPLES]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^0 errors, 0 warnings in 6 files\n$/);
  });

  it('invalid input: exit 1, every finding as file:line:col: path: message [CODE]', async () => {
    const r = await palisade(['lint', '-f', INVALID]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${INVALID}:8:13: spec.priority: `);
    expect(r.stdout).toMatch(/spec\.priority: .*1000.* \[PAL024\]/);
    expect(r.stdout).toMatch(/:19:3: spec(\.ingres)?: .*ingres.* \[PAL020\]/);
    expect(r.stdout).toMatch(/2 errors, 0 warnings in 1 file\n$/);
  });

  it('-o json: diagnostics with positions and a summary', async () => {
    const r = await palisade(['lint', '-f', INVALID, '-o', 'json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as {
      diagnostics: Record<string, unknown>[];
      summary: unknown;
    };
    expect(out.summary).toEqual({ files: 1, errors: 2, warnings: 0 });
    expect(Object.keys(out.diagnostics[0] ?? {}).sort()).toEqual(
      ['code', 'col', 'endCol', 'endLine', 'file', 'line', 'message', 'path', 'severity'].sort(),
    );
    expect(out.diagnostics.map((d) => d.code).sort()).toEqual(['PAL020', 'PAL024']);
    expect(out.diagnostics.find((d) => d.code === 'PAL024')).toMatchObject({
      severity: 'error',
      file: INVALID,
      line: 8,
      col: 13,
      path: 'spec.priority',
    });
  });

  it('-o sarif: SARIF 2.1.0 with rules, regions and fingerprints (FORMATS.md)', async () => {
    const r = await palisade(['lint', '-f', INVALID, '-o', 'sarif']);
    expect(r.code).toBe(1);
    const log = JSON.parse(r.stdout);
    expect(log.version).toBe('2.1.0');
    expect(log.$schema).toMatch(/sarif-schema-2\.1\.0\.json$/);
    const run = log.runs[0];
    const driver = run.tool.driver;
    expect(driver).toMatchObject({
      name: 'palisade',
      version: expect.any(String),
      semanticVersion: expect.any(String),
    });
    expect(driver.informationUri).toMatch(/^https:\/\//);
    for (const rule of driver.rules) {
      expect(rule.id).toMatch(/^PAL\d{3}$/);
      expect(rule.name).toMatch(/^[a-z-]+$/);
      expect(rule.shortDescription.text.length).toBeGreaterThan(0);
      expect(rule.fullDescription.text.length).toBeGreaterThan(0);
      expect(rule.help.text.length).toBeGreaterThan(0);
      expect(['error', 'warning', 'note']).toContain(rule.defaultConfiguration.level);
      expect(rule.properties).toMatchObject({
        tags: expect.any(Array),
        precision: expect.any(String),
      });
      expect(Number(rule.properties['security-severity'])).toBeGreaterThan(0);
    }
    expect(run.results).toHaveLength(2);
    for (const res of run.results) {
      expect(driver.rules[res.ruleIndex].id).toBe(res.ruleId);
      expect(res.level).toBe('error');
      expect(res.message.text.length).toBeGreaterThan(0);
      const loc = res.locations[0].physicalLocation;
      expect(loc.artifactLocation.uri).toBe(INVALID);
      expect(loc.region.startLine).toBeGreaterThanOrEqual(1);
      expect(loc.region.startColumn).toBeGreaterThanOrEqual(1);
      expect(loc.region.endLine).toBeGreaterThanOrEqual(loc.region.startLine);
      expect(loc.region.endColumn).toBeGreaterThanOrEqual(1);
      expect(res.partialFingerprints.primaryLocationLineHash).toMatch(/^[0-9a-f]{32}:\d+$/);
    }
    const prio = run.results.find((x: { ruleId: string }) => x.ruleId === 'PAL024');
    expect(prio.locations[0].physicalLocation.region).toMatchObject({
      startLine: 8,
      startColumn: 13,
      endLine: 8,
    });
  });

  it('-f - reads standard input', async () => {
    const r = await palisade(['lint', '-f', '-'], {
      input: readFileSync(join(ROOT, INVALID), 'utf8'),
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/:8:13: spec\.priority: /);
    const clean = await palisade(['lint', '-f', '-'], { input: examplesText() });
    expect(clean.code).toBe(0);
  });

  it('warnings alone exit 0; --strict makes them findings', async () => {
    const file = 'test/cli/fixtures/warning-only.yaml';
    const r = await palisade(['lint', '-f', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${file}:6:14: metadata.namespace: `);
    expect(r.stdout).toMatch(/\[PAL040\]\n0 errors, 1 warning in 1 file\n$/);
    expect((await palisade(['lint', '--strict', '-f', file])).code).toBe(1);
    // Other commands print warnings on stderr and go on.
    const m = await palisade(['matrix', '-f', file, '--port', 'tcp/80']);
    expect(m.code).toBe(0);
    expect(m.stderr).toContain(`${file}:6:14: metadata.namespace: `);
  });

  it('a missing file is a finding, not a crash', async () => {
    const r = await palisade(['lint', '-f', 'test/cli/fixtures/no-such-file.yaml']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('no-such-file.yaml');
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });
});

describe.concurrent('verdict', () => {
  it('denied by the Baseline tier: exit 1, the path names each tier and the deciding rule', async () => {
    // shop api -> payments ledger: the PCI guardrail passes shop traffic down, no
    // NetworkPolicy selects the ledger, so the east baseline's deny-in-cluster decides.
    const args = [
      'verdict',
      '-f',
      EXAMPLES,
      '--from',
      'east/shop/api-0',
      '--to',
      'east/payments/ledger-0',
      '--port',
      'tcp/9443',
    ];
    const r = await palisade(args);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^east\/shop\/api-0 -> east\/payments\/ledger-0 TCP\/9443 .*: Deny/);
    for (const s of [
      'east-pci-guardrail',
      'pass-shop',
      'NetworkPolicy tier',
      'Baseline tier',
      'east-baseline',
      'deny-in-cluster',
    ]) {
      expect(r.stdout).toContain(s);
    }
    const j = JSON.parse((await palisade([...args, '-o', 'json'])).stdout);
    expect(j.verdict).toBe('Deny');
    expect(j.egress.verdict).toBe('Allow');
    expect(ruleOf(j.ingress.decidedBy)).toMatchObject({
      kind: 'ClusterNetworkPolicy',
      cluster: 'east',
      name: 'east-baseline',
      tier: 'Baseline',
      direction: 'Ingress',
      ruleIndex: 1,
      ruleName: 'deny-in-cluster',
    });
    const steps = j.ingress.path.map((s: { step: string }) => s.step);
    expect(steps).toContain('tier');
    expect(steps).toContain('rule');
  });

  it('allowed by an Admin Accept: exit 0', async () => {
    const r = await palisade([
      'verdict',
      '-f',
      EXAMPLES,
      '--from',
      'east/monitoring/prometheus-0',
      '--to',
      'east/payments/ledger-0',
      '--port',
      'tcp/9443',
      '-o',
      'json',
    ]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.verdict).toBe('Allow');
    expect(ruleOf(j.ingress.decidedBy)).toMatchObject({
      name: 'east-pci-guardrail',
      ruleName: 'accept-monitoring',
      tier: 'Admin',
    });
  });

  it('the Audit-mode mesh policy shows a staged Deny beside the enforced Allow', async () => {
    const r = await palisade([
      'verdict',
      '-f',
      EXAMPLES,
      '--from',
      'east/shop/api-0',
      '--to',
      'east/payments/pay-0',
      '--port',
      'tcp/8443',
      '-o',
      'json',
    ]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(ruleOf(j.ingress.decidedBy)).toMatchObject({
      kind: 'NetworkPolicy',
      namespace: 'payments',
      name: 'payments-ingress',
    });
    expect(j.ingress.staged.verdict).toBe('Deny');
    expect(ruleOf(j.ingress.staged.decidedBy)).toMatchObject({
      kind: 'MeshNetworkPolicy',
      name: 'pci-lockdown-dry-run',
      ruleName: 'deny-shop-everywhere',
    });
  });

  it('unknown and malformed endpoint ids are input errors (exit 2) that say what is allowed', async () => {
    const unknown = await palisade([
      'verdict',
      '-f',
      EXAMPLES,
      '--from',
      'east/shop/nope',
      '--to',
      'east/shop/db-0',
      '--port',
      'tcp/5432',
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown pod "east/shop/nope"');
    const bad = await palisade([
      'verdict',
      '-f',
      EXAMPLES,
      '--from',
      'web-0',
      '--to',
      'east/shop/db-0',
      '--port',
      'tcp/5432',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('<cluster>/<namespace>/<pod>');
    expect(bad.stdout).toBe('');
    for (const r of [unknown, bad]) expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it('the same endpoint twice is an input error, not a verdict', async () => {
    const r = await palisade([
      'verdict',
      '-f',
      EXAMPLES,
      '--from',
      'east/shop/db-0',
      '--to',
      'east/shop/db-0',
      '--port',
      'tcp/5432',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('the same endpoint "east/shop/db-0"');
    expect(r.stdout).toBe('');
  });

  it('a bad --port value is a usage error naming what is allowed', async () => {
    const r = await palisade([
      'verdict',
      '-f',
      EXAMPLES,
      '--from',
      'east/shop/api-0',
      '--to',
      'east/shop/db-0',
      '--port',
      'tcp/0',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--port.*out of range.*allowed: PROTO\/N/s);
  });
});

describe.concurrent('matrix', () => {
  let probes: ProbeJson[];
  const find = (from: string, to: string, port: number): ProbeJson => {
    const p = probes.find((x) => x.from === from && x.to === to && x.port === port);
    if (p === undefined) throw new Error(`no probe ${from} -> ${to} ${port}`);
    return p;
  };
  beforeAll(async () => {
    const r = await palisade(['matrix', '-f', EXAMPLES, '-o', 'json', '--external', '203.0.113.7']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    probes = (JSON.parse(r.stdout) as { probes: ProbeJson[] }).probes;
  }, 60_000);

  it('has exactly the documented JSON shape', async () => {
    const r = JSON.parse(
      (await palisade(['matrix', '-f', EXAMPLES, '-o', 'json', '--port', 'tcp/5432'])).stdout,
    );
    expect(Object.keys(r)).toEqual(['probes']);
    for (const p of r.probes as ProbeJson[]) {
      expect(Object.keys(p)).toEqual([
        'from',
        'to',
        'protocol',
        'port',
        'verdict',
        'egress',
        'ingress',
      ]);
      expect(p.protocol).toBe('TCP');
      expect(p.port).toBe(5432);
      expect(['Allow', 'Deny']).toContain(p.verdict);
      for (const d of [p.egress, p.ingress]) {
        expect(Object.keys(d)).toEqual(['verdict', 'decidedBy', 'staged']);
        expect(['rule', 'default']).toContain(d.decidedBy.kind);
      }
      expect(p.verdict === 'Allow').toBe(
        p.egress.verdict === 'Allow' && p.ingress.verdict === 'Allow',
      );
    }
  });

  it('covers every ordered pair of endpoints on every default port', async () => {
    // 11 pods + 4 nodes + 1 external, 8 distinct container ports in the world.
    const ports = [...new Set(probes.map((p) => `${p.protocol}/${p.port}`))];
    expect(ports).toEqual([
      'TCP/5432',
      'TCP/7000',
      'TCP/8080',
      'TCP/8443',
      'TCP/9090',
      'TCP/9100',
      'TCP/9443',
      'UDP/8125',
    ]);
    const endpoints = new Set(probes.flatMap((p) => [p.from, p.to]));
    expect(endpoints.size).toBe(16);
    expect(probes).toHaveLength(16 * 15 * 8);
    expect(probes.some((p) => p.from === p.to)).toBe(false);
  });

  it('mixes verdicts decided by every tier and kind', async () => {
    const deciders = new Set(
      probes
        .flatMap((p) => [p.egress.decidedBy, p.ingress.decidedBy])
        .map((d) => (d.kind === 'rule' ? d.rule.kind : `default-${d.verdict}`)),
    );
    for (const k of [
      'NetworkPolicy',
      'ClusterNetworkPolicy',
      'AdminNetworkPolicy',
      'BaselineAdminNetworkPolicy',
      'MeshNetworkPolicy',
      'default-Deny',
      'default-Allow',
    ]) {
      expect(deciders).toContain(k);
    }
    const allowed = probes.filter((p) => p.verdict === 'Allow').length;
    expect(allowed).toBeGreaterThan(0);
    expect(allowed).toBeLessThan(probes.length);
  });

  it('the database never opens connections: egress default-denied by NetworkPolicy shop/db', async () => {
    const p = find('east/shop/db-0', 'east/shop/api-0', 9090);
    expect(p.verdict).toBe('Deny');
    expect(p.egress.decidedBy).toEqual({
      kind: 'default',
      verdict: 'Deny',
      isolatedBy: [{ namespace: 'shop', name: 'db' }],
    });
  });

  it('only the platform team reaches nodes: Admin Deny by east-node-access', async () => {
    const p = find('east/shop/api-0', 'node:east/east-node-1', 9090);
    expect(p.verdict).toBe('Deny');
    expect(ruleOf(p.egress.decidedBy)).toMatchObject({
      kind: 'ClusterNetworkPolicy',
      name: 'east-node-access',
      ruleName: 'deny-to-nodes',
    });
    expect(find('east/monitoring/prometheus-0', 'node:east/east-node-1', 9090).verdict).toBe(
      'Allow',
    );
  });

  it('cross-cluster ingest is accepted by mesh policies at both ends', async () => {
    const p = find('east/shop/web-0', 'west/analytics/etl-0', 7000);
    expect(p.verdict).toBe('Allow');
    expect(ruleOf(p.egress.decidedBy)).toMatchObject({
      kind: 'MeshNetworkPolicy',
      name: 'shop-to-analytics-ingest',
      cluster: null,
    });
    expect(ruleOf(p.ingress.decidedBy)).toMatchObject({
      kind: 'MeshNetworkPolicy',
      name: 'analytics-accepts-us-east-shop',
    });
  });

  it('cluster policies do not see other clusters; the mesh Audit rule would close the gap', async () => {
    const p = find('west/shop/web-0', 'east/payments/ledger-0', 9443);
    expect(p.verdict).toBe('Allow');
    expect(p.ingress.decidedBy).toEqual({ kind: 'default', verdict: 'Allow', isolatedBy: [] });
    expect(p.ingress.staged?.verdict).toBe('Deny');
    expect(ruleOf(p.ingress.staged?.decidedBy as Decision).name).toBe('pci-lockdown-dry-run');
  });

  it('v1alpha1 kinds decide in west: ANP Pass to the NetworkPolicy, BANP deny', async () => {
    const pass = find('west/shop/web-0', 'west/analytics/etl-0', 7000);
    expect(pass.verdict).toBe('Allow');
    expect(ruleOf(pass.ingress.decidedBy)).toMatchObject({
      kind: 'NetworkPolicy',
      name: 'etl-ingress',
    });
    const banp = find('west/analytics/etl-0', 'west/shop/web-0', 8080);
    expect(banp.verdict).toBe('Deny');
    expect(ruleOf(banp.ingress.decidedBy)).toMatchObject({
      kind: 'BaselineAdminNetworkPolicy',
      name: 'default',
      ruleName: 'deny-all-in-cluster',
    });
  });

  it('--external adds ip:<addr>; the exfiltration range is denied by the ANP', async () => {
    const p = find('west/analytics/etl-0', 'ip:203.0.113.7', 7000);
    expect(p.verdict).toBe('Deny');
    expect(ruleOf(p.egress.decidedBy)).toMatchObject({
      kind: 'AdminNetworkPolicy',
      name: 'west-analytics-guard',
      ruleName: 'deny-exfiltration-range',
    });
    const web = find('ip:203.0.113.7', 'east/shop/web-0', 8080);
    expect(web.verdict).toBe('Allow');
    expect(ruleOf(web.ingress.decidedBy)).toMatchObject({
      kind: 'NetworkPolicy',
      name: 'web-ingress',
    });
  });

  it('an IPv6 external pairs only with dual-stack pods, and the IPv4 ipBlock does not admit it', async () => {
    const r = await palisade([
      'matrix',
      '-f',
      EXAMPLES,
      '--external',
      '2001:db8::7',
      '--port',
      'tcp/8080',
      '-o',
      'json',
    ]);
    expect(r.code).toBe(0);
    const v6 = (JSON.parse(r.stdout).probes as ProbeJson[]).filter(
      (p) => p.from === 'ip:2001:db8::7',
    );
    expect(v6.map((p) => p.to).sort()).toEqual([
      'east/payments/pay-0',
      'east/shop/web-0',
      'east/shop/web-1',
      'west/analytics/warehouse-0',
      'west/shop/web-0',
    ]);
    const web = v6.find((p) => p.to === 'east/shop/web-0');
    expect(web?.verdict).toBe('Deny');
    expect(web?.ingress.decidedBy).toMatchObject({ kind: 'default', verdict: 'Deny' });
  });

  it('table: a grid per port with UPPERCASE headers and . / X / ! cells', async () => {
    const r = await palisade([
      'matrix',
      '-f',
      EXAMPLES,
      '--port',
      'tcp/8443',
      '--port',
      'tcp/9443',
    ]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('PORT TCP/8443');
    const header = lines[1] ?? '';
    expect(header).toMatch(/^ #  FROM \\ TO\s+1  2  3 .* 15$/);
    // Column k's cells sit under the last digit of its number in the header.
    const labels = [...header.slice(header.indexOf('TO') + 2).matchAll(/\d+/g)];
    const colOf = new Map(
      labels.map((m) => [
        Number(m[0]),
        header.indexOf('TO') + 2 + (m.index ?? 0) + m[0].length - 1,
      ]),
    );
    const rows = new Map<string, { num: number; line: string }>();
    for (const line of lines.slice(2)) {
      const m = /^\s*(\d+)\s+(\S+)/.exec(line);
      if (m === null) break;
      rows.set(m[2] as string, { num: Number(m[1]), line });
    }
    expect(rows.size).toBe(15);
    const cell = (from: string, to: string): string => {
      const row = rows.get(from);
      const col = colOf.get(rows.get(to)?.num ?? -1);
      if (row === undefined || col === undefined) throw new Error(`no cell ${from} -> ${to}`);
      return row.line.charAt(col) || ' ';
    };
    // api-0 -> pay-0 on 8443: enforced Allow, staged Deny by the Audit policy.
    expect(cell('east/shop/api-0', 'east/payments/pay-0')).toBe('!');
    // web-0 -> pay-0: the storefront's egress is isolated to the API and HTTPS.
    expect(cell('east/shop/web-0', 'east/payments/pay-0')).toBe('X');
    // Prometheus is accepted by the PCI guardrail.
    expect(cell('east/monitoring/prometheus-0', 'east/payments/pay-0')).toBe('.');
    expect(cell('east/shop/api-0', 'east/shop/api-0')).toBe(' ');
    expect(r.stdout).toContain('\nPORT TCP/9443\n');
    expect(r.stdout).toMatch(/\. allowed {3}X denied/);
  });

  it('-o wide: one row per probe with the deciding rules', async () => {
    const r = await palisade(['matrix', '-f', EXAMPLES, '--port', 'tcp/9443', '-o', 'wide']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(
      /^FROM\s+TO\s+PORT\s+VERDICT\s+EGRESS\s+INGRESS\s+STAGED$/,
    );
    expect(r.stdout).toMatch(
      /east\/shop\/api-0\s+east\/payments\/ledger-0\s+TCP\/9443\s+Deny\s+Allow \S+\s+Deny CNP east-baseline#1:deny-in-cluster/,
    );
  });

  it('-n keeps probes between pods of one namespace', async () => {
    const run = await palisade([
      'matrix',
      '-f',
      EXAMPLES,
      '-n',
      'analytics',
      '-o',
      'json',
      '--port',
      'tcp/5432',
    ]);
    const r = JSON.parse(run.stdout);
    const ids = new Set((r.probes as ProbeJson[]).flatMap((p) => [p.from, p.to]));
    expect([...ids].sort()).toEqual(['west/analytics/etl-0', 'west/analytics/warehouse-0']);
  });

  it('-n with a namespace no cluster has is an input error listing the known ones', async () => {
    const r = await palisade(['matrix', '-f', EXAMPLES, '-n', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'no namespace "nope" in any cluster (known: analytics, monitoring, payments, shop)',
    );
  });

  it('reads the world from standard input with -f -', async () => {
    const r = await palisade(['matrix', '-f', '-', '--port', 'tcp/5432', '-o', 'json'], {
      input: examplesText(),
    });
    expect(r.code).toBe(0);
    const p = (JSON.parse(r.stdout).probes as ProbeJson[]).find(
      (x) => x.from === 'east/shop/api-0' && x.to === 'east/shop/db-0',
    );
    expect(p?.verdict).toBe('Allow');
  });

  it('the compiled engine gives byte-identical JSON to the reference engine', async () => {
    const args = [
      'matrix',
      '-f',
      EXAMPLES,
      '-o',
      'json',
      '--external',
      '203.0.113.7',
      '--external',
      '2001:db8::7',
    ];
    const reference = await palisade(args);
    const compiled = await palisade([...args, '--engine', 'compiled']);
    expect(compiled.code).toBe(0);
    expect(reference.code).toBe(0);
    expect(compiled.stdout.length).toBeGreaterThan(100_000);
    expect(compiled.stdout).toBe(reference.stdout);
  });

  it('an unknown engine is a usage error listing the engines', async () => {
    const bogus = await palisade(['matrix', '-f', EXAMPLES, '--engine', 'bogus']);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/Allowed choices are reference, compiled, datapath/);
  });

  it('an invalid world is an input error (exit 2) with file:line:col on stderr', async () => {
    const r = await palisade(['matrix', '-f', INVALID]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${INVALID}:8:13: spec.priority:`);
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });
});

describe.concurrent('diff', () => {
  it('the same world twice: no changes, exit 0', async () => {
    const r = await palisade(['diff', '-f', EXAMPLES, '-f', EXAMPLES, '--port', 'tcp/9443']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('no verdict changes\n');
  });

  it('removing the east cluster policies changes exactly the verdicts they decided: exit 1', async () => {
    const next = join(tmp, 'world-next');
    cpSync(join(ROOT, EXAMPLES), next, { recursive: true });
    rmSync(join(next, 'policies/east-cluster-policies.yaml'));
    const r = await palisade([
      'diff',
      '-f',
      EXAMPLES,
      '-f',
      next,
      '--port',
      'tcp/9443',
      '-o',
      'json',
    ]);
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout);
    expect(Object.keys(d)).toEqual([
      'changes',
      'onlyOld',
      'onlyNew',
      'endpointsRemoved',
      'endpointsAdded',
    ]);
    const change = d.changes.find(
      (c: ProbeJson) => c.from === 'east/shop/api-0' && c.to === 'east/payments/ledger-0',
    );
    expect(change).toMatchObject({
      protocol: 'TCP',
      port: 9443,
      old: { verdict: 'Deny' },
      new: { verdict: 'Allow' },
    });
    expect(ruleOf(change.old.ingress.decidedBy).name).toBe('east-baseline');
    // Every change is a probe some east cluster policy decided before.
    for (const c of d.changes) {
      const decided = [c.old.egress.decidedBy, c.old.ingress.decidedBy]
        .filter((x: Decision) => x.kind === 'rule')
        .map((x: Decision) => ruleOf(x).name);
      expect(decided.some((n: string) => n.startsWith('east-'))).toBe(true);
    }
    expect(d.onlyOld + d.onlyNew).toBe(0);
    const text = await palisade(['diff', '-f', EXAMPLES, '-f', next, '--port', 'tcp/9443']);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^FROM\s+TO\s+PORT\s+OLD\s+NEW\s+NOW DECIDED BY/);
  });

  it('needs exactly two inputs (exit 2)', async () => {
    const r = await palisade(['diff', '-f', EXAMPLES]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('exactly two inputs');
  });
});

describe.concurrent('usage and the kubectl plugin', () => {
  it.each([
    [['bogus']],
    [['matrix']],
    [['matrix', '-f', EXAMPLES, '-o', 'yaml']],
    [['lint', '-f', EXAMPLES, '--no-such-flag']],
    [[]],
  ])('%j is a usage error: exit 2, never a stack trace', async (args) => {
    const r = await palisade(args);
    expect(r.code).toBe(2);
    expect(r.stderr.length).toBeGreaterThan(0);
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it('a reader that goes away early ends the program quietly (no EPIPE trace)', async () => {
    const child = spawn(process.execPath, [MAIN, 'matrix', '-f', EXAMPLES, '-o', 'json'], {
      cwd: ROOT,
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) =>
      child.on('close', (c) => resolve(c)),
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('help and --version exit 0 on stdout', async () => {
    const h = await palisade(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^Usage: palisade /);
    for (const c of ['lint', 'verdict', 'matrix', 'diff'])
      expect(h.stdout).toMatch(new RegExp(`\\n  ${c} `));
    expect((await palisade(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('kubectl-palisade is the same program and its help says `kubectl palisade`', async () => {
    const h = await palisade(['--help'], { bin: KUBECTL_MAIN });
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^Usage: kubectl palisade /);
    expect((await palisade(['matrix', '--help'], { bin: KUBECTL_MAIN })).stdout).toMatch(
      /^Usage: kubectl palisade matrix /,
    );
    const v = await palisade(
      [
        'verdict',
        '-f',
        EXAMPLES,
        '--from',
        'east/shop/api-0',
        '--to',
        'east/shop/db-0',
        '--port',
        'tcp/5432',
      ],
      { bin: KUBECTL_MAIN },
    );
    expect(v.code).toBe(0);
  });
});
