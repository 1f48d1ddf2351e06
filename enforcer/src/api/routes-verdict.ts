/** POST /v1/verdict: "would A reach B on port P, and which rule decides?" */
import type { FastifyPluginAsync } from 'fastify';
import type { Probe } from '../../../policy-compiler/src/engine.js';
import { BadProbeError, type EvaluateFn } from './types.js';

const probeSchema = {
  type: 'object',
  required: ['from', 'to', 'protocol', 'port'],
  additionalProperties: false,
  properties: {
    from: { type: 'string', minLength: 1, maxLength: 512 },
    to: { type: 'string', minLength: 1, maxLength: 512 },
    protocol: { type: 'string', enum: ['TCP', 'UDP', 'SCTP'] },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
  },
} as const;

export const verdictRoutes: FastifyPluginAsync<{ evaluate: EvaluateFn }> = async (app, opts) => {
  app.post<{ Body: Probe }>(
    '/v1/verdict',
    {
      schema: {
        body: probeSchema,
        // The engine's ProbeVerdict (policy-compiler/src/engine.ts), passed through.
        response: {
          200: {
            type: 'object',
            required: ['verdict'],
            additionalProperties: true,
            properties: { verdict: { type: 'string', enum: ['Allow', 'Deny'] } },
          },
        },
      },
    },
    async (req, reply) => {
      try {
        return await opts.evaluate(req.body);
      } catch (e) {
        if (e instanceof BadProbeError) {
          return reply
            .code(400)
            .send({ statusCode: 400, error: 'Bad Request', message: e.message });
        }
        throw e;
      }
    },
  );
};
