/**
 * The agent's HTTP API (fastify 5): one plugin per route group, a JSON
 * schema on every route, bearer auth on everything but /healthz and /readyz.
 * Listens on 127.0.0.1 unless told otherwise.
 */
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { FlowPipeline } from '../flows/pipeline.js';
import type { AgentMetrics } from '../metrics/metrics.js';
import { bearerAuth } from './auth.js';
import { flowsRoutes } from './routes-flows.js';
import { healthRoutes } from './routes-health.js';
import { metricsRoutes } from './routes-metrics.js';
import { statusRoutes } from './routes-status.js';
import { verdictRoutes } from './routes-verdict.js';
import type { AgentStatus, EvaluateFn } from './types.js';

export interface ApiOptions {
  /** Bearer token (loadTokenFile). */
  readonly token: string;
  readonly nodeName: string;
  readonly metrics: AgentMetrics;
  readonly pipeline: FlowPipeline;
  readonly isEnforced: () => boolean;
  readonly status: () => AgentStatus | Promise<AgentStatus>;
  readonly evaluate: EvaluateFn;
  /** fastify logger option; default off. Request logs never include headers. */
  readonly logger?: FastifyServerOptions['logger'];
  readonly maxClientBuffer?: number;
}

export const DEFAULT_API_HOST = '127.0.0.1';

export async function buildApi(opts: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 64 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });
  app.setErrorHandler(
    (err: { statusCode?: number; validation?: unknown; message: string }, req, reply) => {
      const code =
        err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (code === 500) req.log.error({ err }, 'request failed');
      return reply.code(code).send({
        statusCode: code,
        error: STATUS_CODES[code] ?? 'Error',
        message: code === 500 ? 'internal error' : err.message,
      });
    },
  );
  await app.register(healthRoutes, { isEnforced: opts.isEnforced });
  await app.register(async (secured) => {
    secured.addHook('onRequest', bearerAuth(opts.token));
    await secured.register(metricsRoutes, { metrics: opts.metrics });
    await secured.register(statusRoutes, { status: opts.status });
    await secured.register(flowsRoutes, {
      pipeline: opts.pipeline,
      nodeName: opts.nodeName,
      ...(opts.maxClientBuffer !== undefined ? { maxClientBuffer: opts.maxClientBuffer } : {}),
    });
    await secured.register(verdictRoutes, { evaluate: opts.evaluate });
  });
  return app;
}

/** Builds and listens; returns the app and its address (port 0 = any free port). */
export async function startApi(
  opts: ApiOptions & { readonly host?: string; readonly port?: number },
): Promise<{ app: FastifyInstance; url: string }> {
  const app = await buildApi(opts);
  const url = await app.listen({ host: opts.host ?? DEFAULT_API_HOST, port: opts.port ?? 9962 });
  return { app, url };
}
