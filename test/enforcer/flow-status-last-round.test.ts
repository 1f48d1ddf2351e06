/**
 * /v1/status carries the reconciler's last round (stage timings) as the
 * response schema declares it; before the schema had it, fastify stripped it.
 */
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { statusRoutes } from '../../enforcer/src/api/routes-status.js';
import type { AgentStatus } from '../../enforcer/src/api/types.js';
import type { RoundTimings } from '../../enforcer/src/reconcile/stage-timings.js';

const base: AgentStatus = {
  node: 'n1',
  cluster: 'c1',
  datapathRevision: 3,
  lastSync: null,
  policies: [],
};

describe('/v1/status lastRound', () => {
  let current: AgentStatus & { lastRound?: RoundTimings | null } = base;
  const app = Fastify();
  void app.register(statusRoutes, { status: () => current });
  afterAll(() => app.close());

  it('serves the stage timings of the last round', async () => {
    const round = {
      submittedAtMs: 1700000000000.25,
      finishedAtMs: 1700000000012.5,
      stages: { queued: 0.002, load: 0.003, compile: 0.004, apply: 0.001, publish: 0.0005 },
      sync: 'delta',
      outcome: 'applied',
    } satisfies RoundTimings;
    current = { ...base, lastRound: round };
    const res = await app.inject('/v1/status');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ node: 'n1', lastRound: round });
  });

  it('a rejected round has only the stages that ran; null before the first round', async () => {
    const round: RoundTimings = {
      submittedAtMs: 1,
      finishedAtMs: 2,
      stages: { queued: 0.001, load: 0.002 },
      sync: 'none',
      outcome: 'rejected',
    };
    current = { ...base, lastRound: round };
    expect((await app.inject('/v1/status')).json().lastRound).toEqual(round);
    current = { ...base, lastRound: null };
    expect((await app.inject('/v1/status')).json().lastRound).toBeNull();
  });
});
