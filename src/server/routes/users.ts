/** POST /v1/events (behaviour in) and GET /v1/users/:id/recommendations (cold-start aware). */
import type { FastifyInstance } from 'fastify';
import type { BehaviourEvent, EventType } from '../../users/events.ts';
import { recordEvents } from '../../users/service.ts';
import { recommend } from '../../recommend/service.ts';
import { toHit } from './search.ts';
import { checkLimit, PAGE_QUERY_PROPERTIES } from './paging.ts';
import type { AppDeps } from '../app.ts';

interface EventBody {
  eventId: string;
  userId: string;
  videoId: string;
  type: EventType;
  timestamp: string;
  watchSeconds?: number;
  completion?: number;
}

export function userRoutes(deps: AppDeps) {
  const cap = deps.config.server.searchMaxLimit;
  return async (app: FastifyInstance) => {
    app.post<{ Body: { events: EventBody[] } }>(
      '/v1/events',
      {
        schema: {
          summary: 'A batch of behaviour events (view, like, skip, share); idempotent by eventId',
          body: { $ref: 'EventsRequest#' },
          response: { 202: { $ref: 'EventsResponse#' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req, reply) => {
        const events: BehaviourEvent[] = req.body.events.map((e) => ({
          eventId: e.eventId,
          userId: e.userId,
          videoId: e.videoId,
          type: e.type,
          timestamp: Date.parse(e.timestamp),
          ...(e.watchSeconds !== undefined ? { watchSeconds: e.watchSeconds } : {}),
          ...(e.completion !== undefined ? { completion: e.completion } : {}),
        }));
        return reply.code(202).send(await recordEvents(deps, events));
      },
    );

    app.get<{ Params: { id: string }; Querystring: { limit?: number; offset?: number } }>(
      '/v1/users/:id/recommendations',
      {
        schema: {
          summary:
            'Recommendations: the user vector against item behaviour vectors (cold items included), or popular-and-fresh with no history',
          params: {
            type: 'object',
            required: ['id'],
            properties: { id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._@-]+$' } },
          },
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: PAGE_QUERY_PROPERTIES,
          },
          response: { 200: { $ref: 'Recommendations#' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req) => {
        const limit = req.query.limit ?? 10;
        checkLimit(limit, cap);
        const r = await recommend(
          { store: deps.store, events: deps.events, catalog: deps.catalog, generation: deps.encoders.generation.name },
          req.params.id,
          limit,
          req.query.offset ?? 0,
        );
        return { userId: req.params.id, source: r.source, hits: r.hits.map((h) => toHit(h, deps.config.server.publicUrl)) };
      },
    );
  };
}
