/** /v1/status: per-policy realization on this node. */
import type { FastifyPluginAsync } from 'fastify';
import type { AgentStatus } from './types.js';

const nullableString = { type: ['string', 'null'] } as const;

/**
 * The reconciler's last round, stage by stage (RoundTimings in
 * reconcile/stage-timings.ts); null before the first round. Additive: the
 * agent's status already carried it, the schema used to strip it.
 */
const lastRoundSchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['submittedAtMs', 'finishedAtMs', 'stages', 'sync', 'outcome'],
  properties: {
    submittedAtMs: { type: 'number' },
    finishedAtMs: { type: 'number' },
    stages: {
      type: 'object',
      additionalProperties: false,
      properties: {
        queued: { type: 'number' },
        load: { type: 'number' },
        compile: { type: 'number' },
        apply: { type: 'number' },
        publish: { type: 'number' },
      },
    },
    sync: { type: 'string', enum: ['delta', 'full', 'none'] },
    outcome: { type: 'string', enum: ['applied', 'rejected'] },
    compilePath: { type: 'string', enum: ['full', 'general', 'pods', 'policies'] },
  },
} as const;

export const statusSchema = {
  type: 'object',
  required: ['node', 'cluster', 'datapathRevision', 'lastSync', 'policies'],
  additionalProperties: false,
  properties: {
    node: { type: 'string' },
    cluster: { type: 'string' },
    datapathRevision: { type: 'integer' },
    lastSync: nullableString,
    lastError: nullableString,
    lastRound: lastRoundSchema,
    sources: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'state', 'problems', 'ignored', 'notes'],
        properties: {
          name: { type: 'string' },
          state: { type: 'string' },
          problems: { type: 'integer' },
          ignored: { type: 'integer' },
          notes: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['key', 'kind', 'message'],
              properties: {
                key: { type: 'string' },
                kind: { type: 'string' },
                message: { type: 'string' },
              },
            },
          },
          counts: { type: 'object', additionalProperties: { type: 'integer' } },
          revision: { type: 'string' },
          lastError: nullableString,
        },
      },
    },
    policies: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: [
          'kind',
          'cluster',
          'namespace',
          'name',
          'revision',
          'enforcedRevision',
          'state',
          'entries',
          'error',
        ],
        properties: {
          kind: { type: 'string' },
          cluster: nullableString,
          namespace: nullableString,
          name: { type: 'string' },
          revision: { type: 'string' },
          enforcedRevision: nullableString,
          state: { type: 'string', enum: ['enforced', 'pending', 'error'] },
          entries: { type: 'integer' },
          error: nullableString,
        },
      },
    },
  },
} as const;

export const statusRoutes: FastifyPluginAsync<{
  status: () => AgentStatus | Promise<AgentStatus>;
}> = async (app, opts) => {
  app.get('/v1/status', { schema: { response: { 200: statusSchema } } }, async () => opts.status());
};
