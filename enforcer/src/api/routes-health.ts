/** /healthz and /readyz: unauthenticated, for kubelet probes. */
import type { FastifyPluginAsync } from 'fastify';

export interface HealthOptions {
  /** True once policy is enforced in the datapath (first successful sync). */
  readonly isEnforced: () => boolean;
}

const bodySchema = {
  type: 'object',
  properties: { status: { type: 'string' }, ready: { type: 'boolean' } },
  required: ['status'],
  additionalProperties: false,
} as const;

export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, opts) => {
  app.get('/healthz', { schema: { response: { 200: bodySchema } } }, async () => ({
    status: 'ok',
  }));
  app.get(
    '/readyz',
    { schema: { response: { 200: bodySchema, 503: bodySchema } } },
    async (_req, reply) => {
      const ready = opts.isEnforced();
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'policy not enforced yet', ready });
    },
  );
};
