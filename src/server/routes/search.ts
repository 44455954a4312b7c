/** POST /v1/search and GET /v1/videos/:id/similar. */
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors/index.ts';
import type { ItemFilter } from '../../store/types.ts';
import { search, type SearchHit, type SearchQuery } from '../../search/service.ts';
import type { AppDeps } from '../app.ts';
import { normaliseWords } from '../../enrich/text.ts';
import { checkLimit, PAGE_QUERY_PROPERTIES } from './paging.ts';

export interface FilterBody {
  tags?: { any?: string[]; all?: string[] };
  durationS?: { min?: number; max?: number };
  uploadedAt?: { from?: string; to?: string };
  modalities?: Array<'video' | 'audio' | 'text'>;
  evidence?: { any?: string[] };
}
type SearchBody = Omit<SearchQuery, 'filter' | 'limit' | 'offset'> & { filter?: FilterBody; limit?: number; offset?: number };

export function toFilter(f: FilterBody | undefined): ItemFilter {
  if (!f) return {};
  const out: ItemFilter = {};
  if (f.tags?.any?.length) out.tagsAny = f.tags.any.map((t) => t.toLowerCase());
  if (f.tags?.all?.length) out.tagsAll = f.tags.all.map((t) => t.toLowerCase());
  if (f.durationS?.min !== undefined) out.durationMinS = f.durationS.min;
  if (f.durationS?.max !== undefined) out.durationMaxS = f.durationS.max;
  if (out.durationMinS !== undefined && out.durationMaxS !== undefined && out.durationMinS > out.durationMaxS) {
    throw new AppError('INVALID_FIELD', 'durationS.min is above durationS.max', { field: 'filter.durationS' });
  }
  if (f.uploadedAt?.from) out.uploadedAfter = Date.parse(f.uploadedAt.from);
  if (f.uploadedAt?.to) out.uploadedBefore = Date.parse(f.uploadedAt.to);
  if (out.uploadedAfter !== undefined && out.uploadedBefore !== undefined && out.uploadedAfter > out.uploadedBefore) {
    throw new AppError('INVALID_FIELD', 'uploadedAt.from is after uploadedAt.to', { field: 'filter.uploadedAt' });
  }
  if (f.modalities?.length) out.modalities = f.modalities;
  const terms = (f.evidence?.any ?? []).flatMap(normaliseWords);
  if (terms.length) out.termsAny = [...new Set(terms)];
  return out;
}

export function toHit(h: SearchHit, publicUrl: string) {
  const p = h.payload;
  return {
    videoId: h.videoId,
    score: h.score,
    title: p.title,
    tags: p.tags,
    durationS: p.durationS,
    modalities: p.modalities,
    ...(p.externalId ? { externalId: p.externalId } : {}),
    posterUrl: `${publicUrl}/v1/videos/${h.videoId}/poster.jpg`,
    uploadedAt: new Date(p.uploadedAt).toISOString(),
    ...(h.moments ? { moments: h.moments } : {}),
    ...(h.evidence ? { evidence: h.evidence } : {}),
  };
}

/** Largest |component| a query vector may have: the stored vectors are unit length, so more is a mistake or an attack. */
const MAX_COMPONENT = 1e6;

/** A query vector holds finite JSON numbers of bounded magnitude (1e400 parses to Infinity; "1" is not a number). */
function checkVector(v: unknown): void {
  if (!Array.isArray(v)) return; // absent, or the schema's to refuse
  const bad = v.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x) || Math.abs(x) > MAX_COMPONENT);
  if (bad >= 0)
    throw new AppError('VECTOR_INVALID', `vector[${bad}] is not a finite number of magnitude at most ${MAX_COMPONENT}`, {
      field: `vector.${bad}`,
    });
}

export function searchRoutes(deps: AppDeps) {
  const cap = deps.config.server.searchMaxLimit;
  return async (app: FastifyInstance) => {
    app.post<{ Body: SearchBody }>(
      '/v1/search',
      {
        schema: {
          summary: 'Similarity search: text → video, video → video, vector, per modality, moments, filters',
          body: { $ref: 'SearchRequest#' },
          response: { 200: { $ref: 'SearchResponse#' }, '4xx': { $ref: 'Error#' } },
        },
        // Before the schema, which coerces: a vector of strings is refused, not read as numbers.
        preValidation: async (req) => checkVector((req.body as { vector?: unknown } | undefined)?.vector),
      },
      async (req) => {
        const b = req.body;
        const limit = b.limit ?? 10;
        checkLimit(limit, cap);
        const hits = await search(deps, { ...b, limit, offset: b.offset ?? 0, filter: toFilter(b.filter) });
        return { generation: deps.encoders.generation.name, hits: hits.map((h) => toHit(h, deps.config.server.publicUrl)) };
      },
    );

    app.get<{
      Params: { id: string };
      Querystring: {
        limit?: number;
        offset?: number;
        modality?: Exclude<SearchQuery['modality'], 'behaviour'>;
        space?: 'content' | 'behaviour';
        diversity?: number;
        collapseDuplicates?: boolean;
      };
    }>(
      '/v1/videos/:id/similar',
      {
        schema: {
          summary:
            'More like this: the short form of video → video search; space=behaviour ranks by what the same people would watch (works for items with no views)',
          params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' } } },
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ...PAGE_QUERY_PROPERTIES,
              modality: { enum: ['fused', 'video', 'audio', 'text'] },
              space: { enum: ['content', 'behaviour'], default: 'content' },
              diversity: { type: 'number', minimum: 0, maximum: 1 },
              collapseDuplicates: { type: 'boolean' },
            },
          },
          response: { 200: { $ref: 'SearchResponse#' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req) => {
        const q = req.query;
        const limit = q.limit ?? 10;
        checkLimit(limit, cap);
        if (q.space === 'behaviour' && q.modality)
          throw new AppError('INVALID_FIELD', 'modality applies to the content space only', { field: 'modality' });
        const hits = await search(deps, {
          videoId: req.params.id,
          limit,
          offset: q.offset ?? 0,
          ...(q.space === 'behaviour' ? { modality: 'behaviour' as const } : q.modality ? { modality: q.modality } : {}),
          ...(q.diversity !== undefined ? { diversity: q.diversity } : {}),
          ...(q.collapseDuplicates !== undefined ? { collapseDuplicates: q.collapseDuplicates } : {}),
        });
        return { generation: deps.encoders.generation.name, hits: hits.map((h) => toHit(h, deps.config.server.publicUrl)) };
      },
    );
  };
}
