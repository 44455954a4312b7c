/** POST /v1/events (behaviour in) and GET /v1/users/:id/recommendations (cold-start aware). */
import type { FastifyInstance } from 'fastify';
import type { BehaviourEvent, EventType } from '../../users/events.ts';
import { recordEvents } from '../../users/service.ts';
import { WatchedCache } from '../../recommend/watched-cache.ts';
import { recommend, type RecommendDeps, type Recommendations, type SessionItem } from '../../recommend/service.ts';
import { toFilter, toHit, type FilterBody } from './search.ts';
import { checkLimit, PAGE_QUERY_PROPERTIES, USER_ID_PARAMS } from './paging.ts';
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

interface RecommendQuery {
  limit?: number;
  offset?: number;
  exclude?: string[];
  diversity?: number;
  experiment?: string;
  tags?: string[];
  tagsAll?: string[];
  durationMin?: number;
  durationMax?: number;
  uploadedFrom?: string;
  uploadedTo?: string;
  modalities?: Array<'video' | 'audio' | 'text'>;
}

interface SessionBody {
  watched: SessionItem[];
  sessionId?: string;
  limit?: number;
  offset?: number;
  exclude?: string[];
  diversity?: number;
  filter?: FilterBody;
  experiment?: string;
}

function recommendDeps(deps: AppDeps): RecommendDeps {
  const { store, events, catalog, popularity, encoders, profiles } = deps;
  return {
    store,
    events,
    catalog,
    popularity,
    encoders,
    profiles,
    policy: deps.config.recommend,
    watchedCache: new WatchedCache(undefined, undefined, () => encoders.generation.name),
  };
}

function toResponse(r: Recommendations, publicUrl: string, generation: string) {
  return {
    generation,
    source: r.source,
    history: r.history,
    personalShare: r.personalShare,
    ...(r.experiment ? { experiment: r.experiment } : {}),
    ...(r.unknownVideoIds ? { unknownVideoIds: r.unknownVideoIds } : {}),
    hits: r.hits.map((h) => ({ ...toHit(h, publicUrl), reason: h.reason })),
  };
}

export function userRoutes(deps: AppDeps) {
  const cap = deps.config.server.searchMaxLimit;
  const rec = recommendDeps(deps);
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

    app.get<{ Params: { id: string }; Querystring: RecommendQuery }>(
      '/v1/users/:id/recommendations',
      {
        schema: {
          summary:
            'Recommendations for a stored user: personal, blended with popular-and-fresh by history length, new items in reserved slots; each hit says why',
          params: USER_ID_PARAMS,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ...PAGE_QUERY_PROPERTIES,
              exclude: { type: 'array', items: { type: 'string' }, maxItems: 1000 },
              diversity: { type: 'number', minimum: 0, maximum: 1 },
              experiment: { type: 'string', minLength: 1, maxLength: 128 },
              tags: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 64, description: 'any of these tags' },
              tagsAll: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 64 },
              durationMin: { type: 'number', minimum: 0 },
              durationMax: { type: 'number', minimum: 0 },
              uploadedFrom: { type: 'string', format: 'date-time' },
              uploadedTo: { type: 'string', format: 'date-time' },
              modalities: { type: 'array', items: { enum: ['video', 'audio', 'text'] }, uniqueItems: true },
            },
          },
          response: { 200: { $ref: 'Recommendations#' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req) => {
        const q = req.query;
        const limit = q.limit ?? 10;
        checkLimit(limit, cap);
        const r = await recommend(rec, {
          userId: req.params.id,
          limit,
          offset: q.offset ?? 0,
          ...(q.exclude ? { exclude: q.exclude } : {}),
          ...(q.diversity !== undefined ? { diversity: q.diversity } : {}),
          ...(q.experiment !== undefined ? { experiment: q.experiment } : {}),
          filter: toFilter({
            ...(q.tags || q.tagsAll ? { tags: { ...(q.tags ? { any: q.tags } : {}), ...(q.tagsAll ? { all: q.tagsAll } : {}) } } : {}),
            ...(q.durationMin !== undefined || q.durationMax !== undefined
              ? { durationS: { min: q.durationMin, max: q.durationMax } }
              : {}),
            ...(q.uploadedFrom || q.uploadedTo ? { uploadedAt: { from: q.uploadedFrom, to: q.uploadedTo } } : {}),
            ...(q.modalities ? { modalities: q.modalities } : {}),
          }),
        });
        return { userId: req.params.id, ...toResponse(r, deps.config.server.publicUrl, deps.encoders.generation.name) };
      },
    );

    app.post<{ Body: SessionBody }>(
      '/v1/recommendations',
      {
        schema: {
          summary: 'Recommendations for a session without a stored user: the user tower runs on the recently watched videos',
          body: { $ref: 'SessionRecommendationsRequest#' },
          response: { 200: { $ref: 'Recommendations#' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req) => {
        const b = req.body;
        const limit = b.limit ?? 10;
        checkLimit(limit, cap);
        const r = await recommend(rec, {
          session: b.watched,
          limit,
          offset: b.offset ?? 0,
          ...(b.sessionId ? { sessionId: b.sessionId } : {}),
          ...(b.exclude ? { exclude: b.exclude } : {}),
          ...(b.diversity !== undefined ? { diversity: b.diversity } : {}),
          ...(b.experiment !== undefined ? { experiment: b.experiment } : {}),
          filter: toFilter(b.filter),
        });
        return {
          ...(b.sessionId ? { sessionId: b.sessionId } : {}),
          ...toResponse(r, deps.config.server.publicUrl, deps.encoders.generation.name),
        };
      },
    );
  };
}
