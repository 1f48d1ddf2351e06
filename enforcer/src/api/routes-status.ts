/** /v1/status: per-policy realization on this node. */
import type { FastifyPluginAsync } from 'fastify';
import type { AgentStatus } from './types.js';

const nullableString = { type: ['string', 'null'] } as const;

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
