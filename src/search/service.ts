/**
 * Similarity search: one query kind (text, videoId or vector) → a vector in the joint space → the store, with
 * filters, exclusions, moments (segment hits grouped back to videos), diversity (MMR) and near-duplicate collapse.
 */
import { AppError } from '../errors/index.ts';
import type { Encoders } from '../models/types.ts';
import type { ItemFilter, ItemHit, VectorName, VectorStore } from '../store/types.ts';
import { dot, unit } from '../vectors.ts';
import { groupMoments, mmr, type Moment } from './rank.ts';

export interface SearchQuery {
  text?: string;
  videoId?: string;
  vector?: number[];
  /** Which item vector to rank by; `behaviour` (what the same people would watch) is for video → video only. */
  modality?: 'fused' | 'video' | 'audio' | 'text' | 'behaviour';
  filter?: ItemFilter;
  limit: number;
  offset: number;
  exclude?: string[];
  moments?: boolean;
  /** 0 = pure relevance, 1 = as spread as possible (MMR). */
  diversity?: number;
  /** Drop hits that are near-copies of the query video (same content re-encoded). */
  collapseDuplicates?: boolean;
}

export interface SearchHit {
  videoId: string;
  score: number;
  payload: ItemHit['payload'];
  moments?: Moment[];
}

export interface SearchDeps {
  encoders: Encoders;
  store: VectorStore;
}

/**
 * Video-vector similarity at or above which two videos count as the same content. Measured on the default
 * generation: a clip re-encoded at 96x96 and 60 kb/s scores 0.94 against its original, 112-144 px copies >= 0.95,
 * while the nearest distinct clip of 50 held-out ones scores 0.60.
 */
export const DUPLICATE_SIMILARITY = 0.9;
/** Candidates fetched per result slot when reranking (MMR, dedup). */
const OVERFETCH = 4;

async function queryVector(deps: SearchDeps, q: SearchQuery, using: VectorName): Promise<Float32Array> {
  const dim = deps.encoders.generation.dim;
  if (q.text !== undefined) return (await deps.encoders.encodeText([q.text]))[0]!;
  if (q.vector !== undefined) {
    if (q.vector.length !== dim)
      throw new AppError('VECTOR_DIMENSION', `vector has ${q.vector.length} dimensions, the generation has ${dim}`, { field: 'vector' });
    const v = unit(Float32Array.from(q.vector));
    if (!v) throw new AppError('INVALID_FIELD', 'vector must be non-zero', { field: 'vector' });
    return v;
  }
  const item = await deps.store.getItem(q.videoId!, true);
  if (!item) throw new AppError('VIDEO_NOT_FOUND', `no video ${q.videoId}`, { field: 'videoId' });
  const v = item.vectors?.[using];
  if (!v)
    throw new AppError('INVALID_FIELD', `video ${q.videoId} has no ${using} vector (it has ${item.payload.modalities.join(', ')})`, {
      field: 'modality',
    });
  return v;
}

export async function search(deps: SearchDeps, q: SearchQuery): Promise<SearchHit[]> {
  const kinds = (['text', 'videoId', 'vector'] as const).filter((k) => q[k] !== undefined);
  if (kinds.length !== 1)
    throw new AppError('INVALID_FIELD', 'give exactly one of text, videoId, vector', { field: kinds.length ? kinds.join(',') : 'text' });
  const using: VectorName = q.modality ?? 'fused';
  const qv = await queryVector(deps, q, using);
  const exclude = [...(q.exclude ?? []), ...(q.videoId ? [q.videoId] : []), ...(q.filter?.excludeVideoIds ?? [])];
  const filter: ItemFilter = { ...q.filter, ...(exclude.length ? { excludeVideoIds: exclude } : {}) };
  const want = q.offset + q.limit;
  const rerank = (q.diversity ?? 0) > 0 || q.collapseDuplicates === true;
  const hits = q.moments
    ? await searchMoments(deps, qv, using, filter, want)
    : await deps.store.searchItems({ vector: qv, using, filter, limit: rerank ? want * OVERFETCH : want, withVectors: rerank });
  let ranked: SearchHit[] = hits;
  if (rerank && !q.moments) {
    const cands = (hits as ItemHit[]).map((h) => ({ ...h, id: h.videoId, vector: h.vectors?.[using] ?? new Float32Array(qv.length) }));
    const kept = q.collapseDuplicates && q.videoId ? cands.filter((c) => dot(c.vector, qv) < DUPLICATE_SIMILARITY) : cands;
    ranked = (q.diversity ?? 0) > 0 ? mmr(kept, want, q.diversity!, DUPLICATE_SIMILARITY) : kept.slice(0, want);
  }
  return ranked
    .slice(q.offset, want)
    .map((h) => ({ videoId: h.videoId, score: h.score, payload: h.payload, ...(h.moments ? { moments: h.moments } : {}) }));
}

/** Segment search grouped back to videos; the store applies the item filter to the segments' videos. */
async function searchMoments(
  deps: SearchDeps,
  qv: Float32Array,
  using: VectorName,
  filter: ItemFilter,
  want: number,
): Promise<SearchHit[]> {
  const segUsing = using === 'video' || using === 'audio' ? using : 'fused';
  // Several segments per video: widen the page until it holds enough videos (or the segments run out).
  for (let limit = Math.max(50, want * 20); ; limit *= 4) {
    const segs = await deps.store.searchSegments({ vector: qv, using: segUsing, limit, filter });
    const grouped = groupMoments(segs.map((s) => ({ videoId: s.videoId, startS: s.payload.startS, endS: s.payload.endS, score: s.score })));
    if (grouped.length >= want || segs.length < limit) {
      const out: SearchHit[] = [];
      for (const g of grouped.slice(0, want)) {
        const item = await deps.store.getItem(g.videoId);
        if (item) out.push({ videoId: g.videoId, score: g.score, payload: item.payload, moments: g.moments });
      }
      return out;
    }
  }
}
