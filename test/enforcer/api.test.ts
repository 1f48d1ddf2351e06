import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import {
  buildApi,
  loadTokenFile,
  startApi,
  BadProbeError,
  tokenMatches,
  type ApiOptions,
} from '../../enforcer/src/api/index.js';
import { FlowPipeline } from '../../enforcer/src/flows/pipeline.js';
import { AgentMetrics } from '../../enforcer/src/metrics/index.js';
import { sampleFlow } from './flow-context.js';

const TOKEN = 'test-token-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'palisade-api-'));
const flow = sampleFlow;

let enforced = false;
const logLines: string[] = [];
function options(pipeline: FlowPipeline): ApiOptions {
  return {
    token: TOKEN,
    nodeName: 'east/node-a',
    metrics: new AgentMetrics({ processMetrics: false }),
    pipeline,
    isEnforced: () => enforced,
    status: () => ({
      node: 'east/node-a',
      cluster: 'east',
      datapathRevision: 4,
      lastSync: '2026-01-01T00:00:00.000Z',
      policies: [
        {
          kind: 'NetworkPolicy',
          cluster: 'east',
          namespace: 'shop',
          name: 'allow-web',
          revision: '7',
          enforcedRevision: '7',
          state: 'enforced',
          entries: 12,
          error: null,
        },
        {
          kind: 'ClusterNetworkPolicy',
          cluster: 'east',
          namespace: null,
          name: 'bad',
          revision: '2',
          enforcedRevision: '1',
          state: 'error',
          entries: 3,
          error: 'policy map over capacity',
        },
      ],
    }),
    evaluate: (p) => {
      if (p.from === 'nope/x/y') throw new BadProbeError(`unknown endpoint ${p.from}`);
      return {
        probe: p,
        verdict: 'Deny',
        egress: { verdict: 'Deny' },
        ingress: { verdict: 'Allow' },
      };
    },
    logger: {
      level: 'info',
      stream: new Writable({
        write: (c, _e, cb) => (logLines.push(String(c)), cb()),
      }) as unknown as NodeJS.WritableStream,
    } as ApiOptions['logger'],
  };
}

const auth = { authorization: `Bearer ${TOKEN}` };

describe('API (inject)', () => {
  let app: FastifyInstance;
  let pipeline: FlowPipeline;
  beforeAll(async () => {
    pipeline = new FlowPipeline({ sinks: [], nodeName: 'east/node-a', lostReportIntervalMs: 0 });
    app = await buildApi(options(pipeline));
    pipeline.push(flow(true));
    pipeline.push(flow(false));
    await pipeline.drained();
  });
  afterAll(async () => {
    await app.close();
    await pipeline.close();
  });

  it('health is open; readiness follows isEnforced', async () => {
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    enforced = false;
    const r1 = await app.inject('/readyz');
    expect([r1.statusCode, r1.json().ready]).toEqual([503, false]);
    enforced = true;
    const r2 = await app.inject('/readyz');
    expect([r2.statusCode, r2.json().ready]).toEqual([200, true]);
  });

  it.each(['/metrics', '/v1/status', '/v1/flows'])('%s requires the bearer token', async (url) => {
    const none = await app.inject(url);
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    const wrong = await app.inject({ url, headers: { authorization: `Bearer ${TOKEN}x` } });
    expect([wrong.statusCode, wrong.json().message]).toEqual([401, 'invalid token']);
    const basic = await app.inject({ url, headers: { authorization: `Basic ${TOKEN}` } });
    expect(basic.statusCode).toBe(401);
    expect((await app.inject({ url, headers: auth })).statusCode).toBe(200);
  });

  it('POST /v1/verdict requires the token too', async () => {
    const r = await app.inject({
      method: 'POST',
      url: '/v1/verdict',
      payload: { from: 'a/b/c', to: 'a/b/d', protocol: 'TCP', port: 80 },
    });
    expect(r.statusCode).toBe(401);
  });

  it('/metrics serves the registry', async () => {
    const r = await app.inject({ url: '/metrics', headers: auth });
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body).toContain('palisade_flow_records_lost_total');
  });

  it('/v1/status serves per-policy realization', async () => {
    const r = await app.inject({ url: '/v1/status', headers: auth });
    const s = r.json();
    expect(s.datapathRevision).toBe(4);
    expect(s.policies[1]).toMatchObject({
      name: 'bad',
      state: 'error',
      enforcedRevision: '1',
      error: 'policy map over capacity',
    });
  });

  it('/v1/flows streams NDJSON, filtered by CEL', async () => {
    const all = await app.inject({ url: '/v1/flows', headers: auth });
    expect(all.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(all.body.trim().split('\n')).toHaveLength(2);
    const q = encodeURIComponent("flow.verdict == 'DROPPED' && flow.dst.port == 80");
    const denied = await app.inject({ url: `/v1/flows?filter=${q}`, headers: auth });
    const lines = denied.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0].flow.verdict).toBe('DROPPED');
    const lim = await app.inject({ url: '/v1/flows?limit=1', headers: auth });
    expect(JSON.parse(lim.body.trim()).flow.verdict).toBe('FORWARDED');
  });

  it.each([
    ['flow.verdict ==', /^filter: Unexpected token.*\(column 16\)$/],
    ["flow.verdict.matches('(a+)+$')", /^filter: matches\(\) is not allowed/],
    ['flow.nope', /^filter: No such key: nope/],
  ])('a bad filter %j is a 400 with a message', async (f, msg) => {
    const r = await app.inject({ url: `/v1/flows?filter=${encodeURIComponent(f)}`, headers: auth });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(msg);
  });

  it('bad query parameters and bodies are 400 with a message', async () => {
    const r1 = await app.inject({ url: '/v1/flows?limit=-1', headers: auth });
    expect([r1.statusCode, r1.json().message]).toEqual([400, 'querystring/limit must be >= 0']);
    const r2 = await app.inject({ url: '/v1/flows?bogus=1', headers: auth });
    expect(r2.statusCode).toBe(400);
    const r3 = await app.inject({
      method: 'POST',
      url: '/v1/verdict',
      headers: auth,
      payload: { from: 'a/b/c', to: 'a/b/d', protocol: 'ICMP', port: 80 },
    });
    expect([r3.statusCode, r3.json().message]).toEqual([
      400,
      'body/protocol must be equal to one of the allowed values',
    ]);
    const r4 = await app.inject({
      method: 'POST',
      url: '/v1/verdict',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"from":',
    });
    expect(r4.statusCode).toBe(400);
    expect(r4.json().message).not.toMatch(/at .*\.js/);
    const r5 = await app.inject({
      method: 'POST',
      url: '/v1/verdict',
      headers: auth,
      payload: { from: 'nope/x/y', to: 'a/b/d', protocol: 'TCP', port: 80 },
    });
    expect([r5.statusCode, r5.json().message]).toEqual([400, 'unknown endpoint nope/x/y']);
  });

  it('POST /v1/verdict answers through the supplied engine', async () => {
    const r = await app.inject({
      method: 'POST',
      url: '/v1/verdict',
      headers: auth,
      payload: { from: 'a/b/c', to: 'a/b/d', protocol: 'TCP', port: 80 },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({
      verdict: 'Deny',
      probe: { port: 80 },
      ingress: { verdict: 'Allow' },
    });
  });

  it('never logs the token', () => {
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('')).not.toContain(TOKEN);
  });
});

describe('API (real listen on 127.0.0.1:0)', () => {
  let app: FastifyInstance;
  let url: string;
  let pipeline: FlowPipeline;
  beforeAll(async () => {
    pipeline = new FlowPipeline({ sinks: [], nodeName: 'east/node-a', lostReportIntervalMs: 0 });
    ({ app, url } = await startApi({ ...options(pipeline), logger: false, port: 0 }));
  });
  afterAll(async () => {
    await app.close();
    await pipeline.close();
  });

  it('binds to loopback by default', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('wrong token refused over the wire', async () => {
    const r = await fetch(`${url}/v1/status`, {
      headers: { authorization: 'Bearer nope-nope-nope-nope' },
    });
    expect(r.status).toBe(401);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('follow=true streams records pushed after the request', async () => {
    const q = encodeURIComponent("flow.verdict == 'DROPPED'");
    const lines: string[] = [];
    const want = 3;
    await new Promise<void>((resolve, reject) => {
      const req = request(`${url}/v1/flows?follow=true&filter=${q}`, { headers: auth }, (res) => {
        expect(res.statusCode).toBe(200);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          const parts = buf.split('\n');
          buf = parts.pop() as string;
          lines.push(...parts.filter(Boolean));
          if (lines.length >= want) {
            req.destroy();
            resolve();
          }
        });
        // Headers are out: the subscription exists; push new records now.
        for (let i = 0; i < want; i++) {
          pipeline.push(flow(false));
          pipeline.push(flow(true));
        }
      });
      req.on('error', (e) => (lines.length >= want ? resolve() : reject(e)));
      req.end();
    });
    const recs = lines.map((l) => JSON.parse(l));
    expect(recs).toHaveLength(want);
    expect(recs.every((r) => r.flow.verdict === 'DROPPED')).toBe(true);
  });
});

describe('API: a slow follower', () => {
  it('loses records beyond its buffer and is told so in its own stream', async () => {
    const pipeline = new FlowPipeline({
      sinks: [],
      nodeName: 'east/node-a',
      lostReportIntervalMs: 0,
      ringCapacity: 0,
    });
    const { app, url } = await startApi({
      ...options(pipeline),
      logger: false,
      port: 0,
      maxClientBuffer: 4096,
    });
    try {
      let text = '';
      let lost: { source: string; num_events_lost: number } | undefined;
      const req = request(`${url}/v1/flows?follow=true`, { headers: auth });
      const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
        req.on('response', resolve);
        req.on('error', reject);
        req.end();
      });
      res.pause(); // the client stops reading
      for (let i = 0; i < 20_000; i++) pipeline.push(flow(i % 2 === 0));
      await pipeline.drained();
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        const m = /\{"lost_events":\{[^}]*\}/.exec(text);
        if (m && !lost) lost = JSON.parse(`${m[0]}}`).lost_events;
      });
      res.resume();
      // Once the backlog drains, the next record carries the loss notice first.
      for (let i = 0; i < 400 && !lost; i++) {
        pipeline.push(flow(true));
        await new Promise((r) => setTimeout(r, 25));
      }
      req.destroy();
      expect(lost?.source).toBe('api_client');
      const delivered = text.split('\n').filter((l) => l.startsWith('{"flow"')).length;
      expect(lost?.num_events_lost).toBeGreaterThan(0);
      // Everything pushed before the notice is either delivered or counted in it.
      expect(delivered + (lost?.num_events_lost ?? 0)).toBeGreaterThanOrEqual(20_000);
    } finally {
      await app.close();
      await pipeline.close();
    }
  });
});

describe('token file', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a 0600 file and refuses anything readable by others', async () => {
    const p = join(dir, 'token');
    writeFileSync(p, `${TOKEN}\n`, { mode: 0o600 });
    chmodSync(p, 0o600);
    expect(await loadTokenFile(p)).toBe(TOKEN);
    chmodSync(p, 0o644);
    await expect(loadTokenFile(p)).rejects.toThrow(/mode is 0644, must be 0600/);
    chmodSync(p, 0o640);
    await expect(loadTokenFile(p)).rejects.toThrow(/must be 0600/);
    await expect(loadTokenFile(join(dir, 'missing'))).rejects.toThrow(
      /cannot read token file \(ENOENT\)/,
    );
    const short = join(dir, 'short');
    writeFileSync(short, 'abc', { mode: 0o600 });
    await expect(loadTokenFile(short)).rejects.toThrow(/at least 16/);
  });

  it('error messages never contain the token', async () => {
    const p = join(dir, 'leaky');
    writeFileSync(p, TOKEN, { mode: 0o644 });
    chmodSync(p, 0o644);
    const err = await loadTokenFile(p).catch((e: Error) => e);
    expect(String(err)).not.toContain(TOKEN);
  });

  it('compares tokens of any length', () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches(TOKEN, 'x')).toBe(false);
    expect(tokenMatches(TOKEN, `${TOKEN}${TOKEN}`)).toBe(false);
  });
});
