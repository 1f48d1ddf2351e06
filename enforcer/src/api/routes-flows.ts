/**
 * GET /v1/flows: NDJSON of the pipeline's recent records, then (follow=true)
 * live records until the client goes away. `filter` is a CEL flow filter; a
 * bad one is a 400 with its position. A client too slow to keep up loses
 * records, and is told so by a lost_events record in its own stream.
 */
import { PassThrough } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { compileFilter, MAX_FILTER_LENGTH, type FlowFilter } from '../flows/filter.js';
import type { FlowPipeline } from '../flows/pipeline.js';
import { isFlowRecord, lostEventsRecord, type AnyFlowRecord } from '../flows/record.js';

export interface FlowsRouteOptions {
  readonly pipeline: FlowPipeline;
  readonly nodeName: string;
  /** Bytes buffered for one client before its records are dropped (default 1 MiB). */
  readonly maxClientBuffer?: number;
}

interface FlowsQuery {
  filter?: string;
  follow?: boolean;
  limit?: number;
}

export const FLOW_CLIENT_SOURCE = 'api_client';

export const flowsRoutes: FastifyPluginAsync<FlowsRouteOptions> = async (app, opts) => {
  const maxBuffer = opts.maxClientBuffer ?? 1 << 20;
  app.get<{ Querystring: FlowsQuery }>(
    '/v1/flows',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            filter: { type: 'string', maxLength: MAX_FILTER_LENGTH },
            follow: { type: 'boolean', default: false },
            limit: { type: 'integer', minimum: 0, maximum: 100000, default: 1000 },
          },
        },
        response: {
          200: {
            type: 'string',
            description: 'application/x-ndjson: one flow or lost_events record a line',
          },
        },
      },
    },
    async (req, reply) => {
      let filter: FlowFilter | undefined;
      if (req.query.filter !== undefined) {
        const c = compileFilter(req.query.filter);
        if (!c.ok) {
          return reply.code(400).send({
            statusCode: 400,
            error: 'Bad Request',
            message: `filter: ${c.error.message} (column ${c.error.column})`,
          });
        }
        filter = c.filter;
      }
      const keep = (r: AnyFlowRecord): boolean => !isFlowRecord(r) || !filter || filter.matches(r);
      const out = new PassThrough();
      const backlog = opts.pipeline.recent().filter(keep);
      const limit = req.query.limit ?? 1000;
      for (const r of limit === 0 ? [] : backlog.slice(-limit)) out.write(`${JSON.stringify(r)}\n`);
      if (!req.query.follow) {
        out.end();
      } else {
        let lost = 0;
        let first = new Date();
        let last = first;
        const off = opts.pipeline.subscribe((r) => {
          if (!keep(r)) return;
          if (out.writableLength > maxBuffer) {
            if (lost === 0) first = new Date();
            last = new Date();
            lost++;
            return;
          }
          if (lost > 0) {
            out.write(
              `${JSON.stringify(lostEventsRecord(opts.nodeName, FLOW_CLIENT_SOURCE, lost, first, last, new Date()))}\n`,
            );
            lost = 0;
          }
          out.write(`${JSON.stringify(r)}\n`);
        });
        const stop = (): void => {
          off();
          out.end();
        };
        req.raw.once('close', stop);
        reply.raw.once('close', stop);
        // fastify sends headers with the first chunk; a follower must see the
        // 200 before any record arrives, so flush them once the stream is attached.
        reply.raw.once('pipe', () => reply.raw.flushHeaders());
      }
      return reply.type('application/x-ndjson').send(out);
    },
  );
};
