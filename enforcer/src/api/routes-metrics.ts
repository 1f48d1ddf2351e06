/** /metrics: Prometheus text exposition of the agent's own registry. */
import type { FastifyPluginAsync } from 'fastify';
import type { AgentMetrics } from '../metrics/metrics.js';

export const metricsRoutes: FastifyPluginAsync<{ metrics: AgentMetrics }> = async (app, opts) => {
  app.get(
    '/metrics',
    { schema: { response: { 200: { type: 'string' } } } },
    async (_req, reply) => {
      const text = await opts.metrics.text();
      return reply.type(opts.metrics.contentType).send(text);
    },
  );
};
