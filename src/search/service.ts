/**
 * Similarity search: one query kind (text, videoId or vector) → a vector in the joint space → the store, with
 * filters, exclusions, moments (segment hits grouped back to videos), diversity (MMR) and near-duplicate collapse.
 */
import { AppError } from '../errors/index.ts';
import type { Encoders } from '../models/types.ts';
import type { ItemFilter, ItemHit, VectorName, VectorStore } from '../store/types.ts';
import { dot, unit } from '../vectors.ts';
import { matchEvidence, queryTerms, queryWords, type MatchedEvidence } from '../enrich/match.ts';
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

/** A moment, with the evidence inside its time range that matched the query. */
export interface EvidenceMoment extends Moment {
  evidence?: MatchedEvidence[];
}

export interface SearchHit {
  videoId: string;
  score: number;
  payload: ItemHit['payload'];
  moments?: EvidenceMoment[];
  /** The video's evidence that matched a text query (words read on screen, objects seen), best first. */
  evidence?: MatchedEvidence[];
}

export interface SearchDeps {
  encoders: Encoders;
  store: VectorStore;
  /** `config.enrich.evidenceBoost`: score added per unit of evidence match. @defaultValue EVIDENCE_BOOST */
  config?: { enrich: { evidenceBoost: number } };
}

/** The evidence boost when the caller gives no config (README "Configuration", MONTAGE_EVIDENCE_BOOST). */
export const EVIDENCE_BOOST = 0.5;

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
  const boost = deps.config?.enrich.evidenceBoost ?? EVIDENCE_BOOST;
  const words = q.text !== undefined && boost > 0 ? queryWords(q.text) : [];
  let hits: SearchHit[] = q.moments
    ? await searchMoments(deps, qv, using, filter, want)
    : await deps.store.searchItems({ vector: qv, using, filter, limit: rerank ? want * OVERFETCH : want, withVectors: rerank });
  if (words.length > 0)
    hits = await withEvidence(deps, q.text!, words, hits, { qv, using, filter, want, rerank, boost, moments: q.moments === true });
  let ranked: SearchHit[] = hits;
  if (rerank && !q.moments) {
    const cands = (hits as ItemHit[]).map((h) => ({ ...h, id: h.videoId, vector: h.vectors?.[using] ?? new Float32Array(qv.length) }));
    const kept = q.collapseDuplicates && q.videoId ? await withoutDuplicates(deps, q.videoId, qv, hits as ItemHit[], cands) : cands;
    ranked = (q.diversity ?? 0) > 0 ? mmr(kept, want, q.diversity!, DUPLICATE_SIMILARITY) : kept.slice(0, want);
  }
  return ranked.slice(q.offset, want).map((h) => ({
    videoId: h.videoId,
    score: h.score,
    payload: h.payload,
    ...(h.moments ? { moments: h.moments } : {}),
    ...(h.evidence?.length ? { evidence: h.evidence } : {}),
  }));
}

/**
 * Hybrid ranking for text queries: the videos whose evidence has a word of the query (the store's `terms`, which
 * hold OCR words and object class words with their word-vector neighbours) join the vector hits, and every hit's
 * score becomes its vector score + boost x its evidence match (src/enrich/match.ts). With moments, the matched
 * evidence's time ranges become moments of their own (score: the video's best segment + boost x that item's
 * match), and every moment lists the matched evidence inside it.
 */
async function withEvidence(
  deps: SearchDeps,
  text: string,
  words: string[],
  hits: SearchHit[],
  o: { qv: Float32Array; using: VectorName; filter: ItemFilter; want: number; rerank: boolean; boost: number; moments: boolean },
): Promise<SearchHit[]> {
  const byId = new Map(hits.map((h) => [h.videoId, h]));
  const found = await deps.store.searchItems({
    vector: o.qv,
    using: o.using,
    filter: { ...o.filter, termsAny: queryTerms(words) },
    limit: Math.max(o.want, 10) * OVERFETCH,
    withVectors: o.rerank,
  });
  for (const f of found) {
    if (byId.has(f.videoId)) continue;
    if (!o.moments) byId.set(f.videoId, f);
    // A moments search scores videos by segments: a video found by its evidence alone starts from its item score.
    else byId.set(f.videoId, { videoId: f.videoId, score: f.score, payload: f.payload, moments: [] });
  }
  const out: SearchHit[] = [];
  for (const h of byId.values()) {
    const evidence = h.payload.evidence ?? (await deps.store.getItem(h.videoId))?.payload.evidence;
    const { strength, matched } = matchEvidence(text, evidence);
    if (strength <= 0) {
      out.push(h);
      continue;
    }
    const hit: SearchHit = { ...h, score: h.score + o.boost * strength, evidence: matched };
    if (o.moments) hit.moments = evidenceMoments(h.score, h.moments ?? [], matched, o.boost);
    out.push(hit);
  }
  return out.sort((a, b) => b.score - a.score);
}

/** Segment moments and matched-evidence moments of one video, best first (3 at most), each with its evidence. */
function evidenceMoments(base: number, moments: EvidenceMoment[], matched: MatchedEvidence[], boost: number): EvidenceMoment[] {
  const inside = (m: { startS: number; endS: number }) => matched.filter((e) => e.startS < m.endS && e.endS > m.startS);
  const fromEvidence: EvidenceMoment[] = matched.map((e) => ({
    startS: e.startS,
    endS: e.endS,
    score: base + boost * e.match,
    evidence: inside(e),
  }));
  const fromSegments = moments.map((m) => {
    const ev = inside(m);
    return ev.length ? { ...m, evidence: ev } : m;
  });
  const all = [...fromEvidence, ...fromSegments].sort((a, b) => b.score - a.score);
  // One moment per time range: an evidence range and a segment that covers it the same way are the same moment.
  const kept: EvidenceMoment[] = [];
  for (const m of all) {
    if (kept.some((k) => Math.abs(k.startS - m.startS) < 1e-3 && Math.abs(k.endS - m.endS) < 1e-3)) continue;
    kept.push(m);
    if (kept.length === 3) break;
  }
  return kept;
}

/**
 * Candidates that are not copies of `videoId`. A copy is judged on the picture: the video item vectors, which a
 * re-upload's different title does not move (the fused vector carries the title's text vector, and an
 * open-vocabulary text tower tells "clip 7" from "a copy"); items without a video vector fall back to `using`.
 */
async function withoutDuplicates<T extends { vector: Float32Array }>(
  deps: SearchDeps,
  videoId: string,
  qv: Float32Array,
  hits: readonly ItemHit[],
  cands: T[],
): Promise<T[]> {
  const own = (await deps.store.getItem(videoId, true))?.vectors?.video;
  return cands.filter((c, i) => {
    const theirs = hits[i]?.vectors?.video;
    return (own && theirs ? dot(theirs, own) : dot(c.vector, qv)) < DUPLICATE_SIMILARITY;
  });
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
