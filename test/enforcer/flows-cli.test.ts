import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { runCli } from '../../cli/src/program.js';
import type { CliContext } from '../../cli/src/context.js';
import { startApi } from '../../enforcer/src/api/index.js';
import { FlowPipeline } from '../../enforcer/src/flows/index.js';
import { toOcsf } from '../../enforcer/src/flows/ocsf.js';
import { validateOcsfNetworkActivity } from '../../enforcer/src/flows/ocsf-validate.js';
import { AgentMetrics } from '../../enforcer/src/metrics/index.js';
import { sampleFlow } from './flow-context.js';

const TOKEN = 'cli-test-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'palisade-flows-cli-'));
const flow = sampleFlow;

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const ctx: CliContext = {
    displayName: 'palisade',
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    stdin: () => process.stdin,
    exitCode: 0,
  };
  const code = await runCli(args, ctx);
  return { code, out, err };
}

const logFile = join(dir, 'flows.ndjson');
const tokenFile = join(dir, 'token');
beforeAll(() => {
  const lines = [flow(true, 5432), flow(false, 443), flow(true, 22)].map((r) => JSON.stringify(r));
  lines.push(
    JSON.stringify({
      lost_events: { source: 'flow_pipeline', num_events_lost: 4, first: 'a', last: 'b' },
      node_name: 'n',
      time: 't',
    }),
  );
  writeFileSync(logFile, `${lines.join('\n')}\n`);
  writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
  chmodSync(tokenFile, 0o600);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `palisade flows -f logFile --filter F -o FORMAT`, its output lines parsed as JSON. */
async function readFiltered(
  filter: string,
  format: 'json' | 'ocsf',
): Promise<{ code: number; lines: unknown[]; err: string }> {
  const r = await run(['flows', '-f', logFile, '--filter', filter, '-o', format]);
  const lines = r.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as unknown);
  return { code: r.code, lines, err: r.err };
}

describe('palisade flows (files)', () => {
  it('filters with CEL and prints NDJSON; loss records always pass', async () => {
    const r = await readFiltered("flow.verdict == 'DROPPED' && flow.dst.port == 5432", 'json');
    expect(r.code).toBe(0);
    const recs = r.lines as Array<{
      flow: { l4: { TCP: { destination_port: number } } };
      lost_events: { num_events_lost: number };
    }>;
    expect(recs).toHaveLength(2);
    expect(recs[0]?.flow.l4.TCP.destination_port).toBe(5432);
    expect(recs[1]?.lost_events.num_events_lost).toBe(4);
  });

  it('-o ocsf converts each flow to a valid OCSF event, the same as the agent sink, and reports loss records', async () => {
    const r = await readFiltered("flow.verdict == 'DROPPED'", 'ocsf');
    expect(r.code).toBe(0);
    const events = r.lines;
    expect(events).toHaveLength(2);
    for (const e of events) expect(validateOcsfNetworkActivity(e)).toEqual([]);
    const drops = [flow(true, 5432), flow(true, 22)].map(
      (f) => toOcsf(f) as Record<string, unknown>,
    );
    expect(events.map((e) => (e as { dst_endpoint: unknown }).dst_endpoint)).toEqual(
      drops.map((e) => e.dst_endpoint),
    );
    expect(r.err).toBe(
      '1 loss record(s) (4 events lost upstream) are not OCSF flows and were left out of the output; -o json keeps them\n',
    );
  });

  it('prints an aligned table', async () => {
    const r = await run(['flows', '-f', logFile, '--count', '2']);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+VERDICT\s+DIR\s+SOURCE\s+DESTINATION\s+PROTO\s+DECIDED BY$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain('DROPPED');
    expect(lines[1]).toContain('ClusterNetworkPolicy deny-db[1] no-db (POLICY_DENIED)');
    expect(lines[1]?.indexOf('east/shop/web-1')).toBe(lines[0]?.indexOf('SOURCE'));
  });

  it('a bad filter is exit 2 with the position', async () => {
    const r = await run(['flows', '-f', logFile, '--filter', 'flow.verdict.matches("x")']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--filter: matches\(\) is not allowed/);
    expect(r.out).toBe('');
  });

  it('malformed lines are reported with file:line and exit 2; missing files too', async () => {
    const bad = join(dir, 'bad.ndjson');
    writeFileSync(bad, `${JSON.stringify(flow(true))}\nnot json\n{"x":1}\n`);
    const r = await run(['flows', '-f', bad, '-o', 'json']);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${bad}:2: not a flow record`);
    expect(r.err).toContain(`${bad}:3: not a flow record`);
    expect(r.out.trim().split('\n')).toHaveLength(1);
    const m = await run(['flows', '-f', join(dir, 'missing.ndjson')]);
    expect([m.code, m.err]).toEqual([2, `${join(dir, 'missing.ndjson')}: cannot read (ENOENT)\n`]);
  });
});

describe('palisade flows --server', () => {
  let app: FastifyInstance;
  let url: string;
  let pipeline: FlowPipeline;
  beforeAll(async () => {
    pipeline = new FlowPipeline({ sinks: [], nodeName: 'east/node-a', lostReportIntervalMs: 0 });
    pipeline.push(flow(true));
    pipeline.push(flow(false));
    await pipeline.drained();
    ({ app, url } = await startApi({
      token: TOKEN,
      nodeName: 'east/node-a',
      metrics: new AgentMetrics({ processMetrics: false }),
      pipeline,
      isEnforced: () => true,
      status: () => ({
        node: 'n',
        cluster: 'c',
        datapathRevision: 0,
        lastSync: null,
        policies: [],
      }),
      evaluate: () => ({ verdict: 'Allow' }),
      port: 0,
    }));
  });
  afterAll(async () => {
    await app.close();
    await pipeline.close();
  });

  it('reads the backlog through the API with the token and a server-side filter', async () => {
    const r = await run([
      'flows',
      '--server',
      url,
      '--token-file',
      tokenFile,
      '--filter',
      "flow.verdict == 'FORWARDED'",
      '-o',
      'json',
    ]);
    expect(r.code).toBe(0);
    const recs = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(recs.map((x) => x.flow.verdict)).toEqual(['FORWARDED']);
  });

  it('--follow streams records pushed later, --count ends it', async () => {
    const running = run([
      'flows',
      '--server',
      url,
      '--token-file',
      tokenFile,
      '--follow',
      '--filter',
      'flow.dst.port == 9999',
      '--count',
      '2',
      '-o',
      'json',
    ]);
    // Push until the follower has what it wants; bounded.
    let done = false;
    void running.then(() => (done = true));
    for (let i = 0; i < 200 && !done; i++) {
      pipeline.push(flow(true, 9999));
      await new Promise((r) => setTimeout(r, 25));
    }
    const r = await running;
    expect(r.code).toBe(0);
    const recs = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(recs).toHaveLength(2);
    expect(recs.every((x) => x.flow.l4.TCP.destination_port === 9999)).toBe(true);
  });

  it('refuses a token file others can read, and a wrong token', async () => {
    const loose = join(dir, 'loose');
    writeFileSync(loose, TOKEN, { mode: 0o644 });
    chmodSync(loose, 0o644);
    const r1 = await run(['flows', '--server', url, '--token-file', loose]);
    expect([r1.code, r1.err]).toEqual([2, expect.stringContaining('must be 0600')]);
    const wrong = join(dir, 'wrong');
    writeFileSync(wrong, 'another-token-abcdefghij', { mode: 0o600 });
    chmodSync(wrong, 0o600);
    const r2 = await run(['flows', '--server', url, '--token-file', wrong]);
    expect([r2.code, r2.err]).toEqual([2, expect.stringContaining('401 invalid token')]);
    expect(r2.err).not.toContain(TOKEN);
  });
});
