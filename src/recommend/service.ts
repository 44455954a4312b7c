/**
 * Recommendations, cold-start aware (README "Recommendations"). A list of `offset + limit` is built from three
 * sources and cut to the page:
 *   personal   the user's vector (stored, or computed on the fly from a session's videos), mixed with the centroid
 *              of the watched items (policy.ts personalQuery), against every item's `behaviour` vector, so an
 *              item nobody has watched competes like any other; MMR when `diversity`;
 *   popular / fresh   decayed popularity (src/recommend/popularity.ts) alternated with the newest ready uploads;
 *   new-item   a reserved share of slots for recent items with no interactions at all, chosen by the user's vector.
 * The personal share grows with the history: min(1, n / personalAt) (src/recommend/policy.ts). Seen and skipped
 * items, and `exclude`, never appear; search's filters apply to every source. Each hit says which source brought
 * it and which watched items it is closest to in the behaviour space.
 */
import { AppError } from '../errors/index.ts';
import type { Catalog, VideoRecord } from '../catalog/index.ts';
import type { Experiment, RecommendConfig } from '../config/index.ts';
import type { Encoders } from '../models/types.ts';
import type { ItemFilter, ItemHit, ItemPayload, VectorStore } from '../store/types.ts';
import { MIN_ENGAGED_COMPLETION, type EventLog } from '../users/events.ts';
import type { SearchHit } from '../search/service.ts';
import { mmr } from '../search/rank.ts';
import { dot } from '../vectors.ts';
import type { Popularity } from './popularity.ts';
import type { WatchedCache, WatchedItem } from './watched-cache.ts';
import { PROFILE_ITEMS, type UserProfiles } from './profiles.ts';
import { assignArm, interleave, newItemSlots, personalQuery, personalShare, placeNewItems } from './policy.ts';

export interface RecommendDeps {
  store: VectorStore;
  events: EventLog;
  catalog: Catalog;
  popularity: Popularity;
  encoders: Encoders;
  policy: RecommendConfig;
  /**
   * Users' newest watched items as the user-vector job wrote them (one Redis read per request); a user without a
   * profile of the served generation has them read from the store (through `watchedCache` when given).
   */
  profiles?: UserProfiles;
  /** Watched items kept in process briefly, for users without a profile; without it they are read from the store. */
  watchedCache?: WatchedCache;
}

/** One recently watched video of a session without a stored user. */
export interface SessionItem {
  videoId: string;
  /** Fraction watched, 0-1; below MIN_ENGAGED_COMPLETION it counts as a skip (excluded, not history). */
  watchRatio?: number;
  /** Seconds since it was watched. @defaultValue 0 */
  ageSeconds?: number;
}

export interface RecommendRequest {
  /** A stored user (their events and vector); exactly one of userId and session. */
  userId?: string;
  /** Recently watched videos, oldest first unless ageSeconds say otherwise. */
  session?: SessionItem[];
  /** What an experiment hashes for a session (the videos' ids when absent). */
  sessionId?: string;
  limit: number;
  offset: number;
  exclude?: string[];
  /** 0 = pure relevance, 1 = as spread as possible (MMR over the personal candidates). */
  diversity?: number;
  filter?: ItemFilter;
  experiment?: string;
  now?: number;
}

export type RecommendPath = 'personal' | 'new-item' | 'popular' | 'fresh';

export interface Reason {
  path: RecommendPath;
  /** The watched items this one is closest to in the behaviour space, most similar first (up to 3). */
  closest: Array<{ videoId: string; title: string; similarity: number }>;
}

export interface RecommendHit extends SearchHit {
  reason: Reason;
}

export interface Recommendations {
  source: 'personal' | 'blend' | 'popular-fresh';
  /** Engaged events (or session videos) the list is built from. */
  history: number;
  personalShare: number;
  experiment?: { name: string; arm: string };
  hits: RecommendHit[];
  /** Session videos the store does not have (ignored). */
  unknownVideoIds?: string[];
}

/** Candidates fetched per slot for MMR and for the new-item check. */
const OVERFETCH = 4;
/** Watched items considered for a hit's reason and the centroid (the newest). */
const REASON_HISTORY = PROFILE_ITEMS;
const REASON_TOP = 3;

type Watched = WatchedItem;

interface History {
  vector: Float32Array | undefined;
  n: number;
  seen: string[];
  watched: Watched[];
  unknown?: string[];
}

type Cand = SearchHit & { path: RecommendPath; behaviour?: Float32Array | undefined };

export async function recommend(deps: RecommendDeps, req: RecommendRequest): Promise<Recommendations> {
  const now = req.now ?? Date.now();
  const arm = pickArm(deps.policy.experiments, req);
  const h = req.session ? await sessionHistory(deps, req.session) : await storedHistory(deps, req.userId!);
  h.vector = personalQuery(
    h.vector,
    h.watched.flatMap((w) => (w.behaviour ? [w.behaviour] : [])),
    arm?.historyWeight ?? deps.policy.historyWeight,
  );
  const popularOnly = arm?.mode === 'popular';
  const share = h.vector && !popularOnly ? personalShare(h.n, arm?.personalAt ?? deps.policy.personalAt) : 0;
  const want = req.offset + req.limit;
  const slots = h.vector && !popularOnly ? newItemSlots(want, arm?.newItemShare ?? deps.policy.newItemShare) : 0;
  const exclude = [...new Set([...h.seen, ...(req.exclude ?? [])])];
  const filter: ItemFilter = { ...req.filter, ...(exclude.length ? { excludeVideoIds: exclude } : {}) };

  const [personal, fresh, popular] = await Promise.all([
    share > 0 ? personalCands(deps, h.vector!, filter, want, req.diversity ?? 0) : [],
    slots > 0 ? newItemCands(deps, h.vector!, filter, slots, now) : [],
    share < 1 ? popularFresh(deps, filter, new Set(exclude), want, now) : [],
  ]);
  const freshIds = new Set(fresh.map((c) => c.videoId));
  const main = interleave(
    personal.filter((c) => !freshIds.has(c.videoId)),
    popular.filter((c) => !freshIds.has(c.videoId)),
    share,
    want - fresh.length,
    (c) => c.videoId,
  );
  const page = placeNewItems(main, fresh, want).slice(req.offset);
  const hits = await withReasons(deps, page, h.watched);
  return {
    source: share >= 1 ? 'personal' : share > 0 ? 'blend' : 'popular-fresh',
    history: h.n,
    personalShare: share,
    ...(arm ? { experiment: { name: req.experiment!, arm: arm.name } } : {}),
    hits,
    ...(h.unknown ? { unknownVideoIds: h.unknown } : {}),
  };
}

function pickArm(experiments: Record<string, Experiment>, req: RecommendRequest) {
  if (req.experiment === undefined) return undefined;
  const exp = experiments[req.experiment];
  if (!exp) {
    const known = Object.keys(experiments);
    throw new AppError('INVALID_FIELD', `no experiment ${req.experiment} (declared: ${known.length ? known.join(', ') : 'none'})`, {
      field: 'experiment',
    });
  }
  const subject = req.userId ?? req.sessionId ?? (req.session ?? []).map((s) => s.videoId).join(',');
  return assignArm(req.experiment, exp, subject);
}

async function storedHistory(deps: RecommendDeps, userId: string): Promise<History> {
  const maxItems = deps.encoders.generation.preprocessing.user?.max_items ?? 50;
  const generation = deps.encoders.generation.name;
  const [seen, recent, user, profile] = await Promise.all([
    // Bounded (the event log caps it), and only the ready ones can be hits: the store's filter gets those alone.
    deps.events.seen(userId).then((ids) => deps.catalog.readyAmong(ids)),
    deps.events.recent(userId, maxItems),
    deps.store.getUser(userId),
    deps.profiles?.get(userId) ?? null,
  ]);
  const vector = user && user.generation === generation ? user.vector : undefined;
  // The profile moves with the vector (the same job writes both); without one (the job has not run since the
  // profile expired or was introduced), the newest watched items are read from the store.
  if (profile && profile.generation === generation) return { vector, n: recent.length, seen, watched: profile.watched };
  const ids = recent.slice(-REASON_HISTORY).map((r) => r.videoId);
  const load = (some: string[]) => deps.store.getItems(some, true);
  const items = deps.watchedCache ? await deps.watchedCache.get(ids, load) : (await load(ids)).map((i) => i && toWatched(i));
  const watched = items.filter((i): i is Watched => i !== null);
  return { vector, n: recent.length, seen, watched };
}

/** Runs the user tower on the session's videos, as the user-vector job does for a stored user. */
async function sessionHistory(deps: RecommendDeps, session: SessionItem[]): Promise<History> {
  const items = await deps.store.getItems(
    session.map((s) => s.videoId),
    true,
  );
  const unknown = session.filter((_, i) => !items[i]?.vectors?.fused).map((s) => s.videoId);
  const engagedIdx = session
    .map((s, i) => ({ s, i, item: items[i] }))
    .filter(({ s, item }) => item?.vectors?.fused && (s.watchRatio === undefined || s.watchRatio >= MIN_ENGAGED_COMPLETION))
    // oldest first: by age when given, else in the order sent
    .sort((a, b) => (b.s.ageSeconds ?? 0) - (a.s.ageSeconds ?? 0) || a.i - b.i);
  let vector: Float32Array | undefined;
  if (engagedIdx.length > 0 && deps.encoders.has('user')) {
    const maxItems = deps.encoders.generation.preprocessing.user?.max_items ?? 50;
    const used = engagedIdx.slice(-maxItems);
    [vector] = await deps.encoders.encodeUsers([
      { items: used.map((e) => e.item!.vectors!.fused!), ageSeconds: used.map((e) => Math.max(0, e.s.ageSeconds ?? 0)) },
    ]);
  }
  return {
    vector,
    n: engagedIdx.length,
    seen: session.map((s) => s.videoId),
    watched: engagedIdx.slice(-REASON_HISTORY).map((e) => toWatched(e.item!)),
    unknown,
  };
}

function toWatched(i: ItemHit): Watched {
  return { videoId: i.videoId, title: i.payload.title, behaviour: i.vectors?.behaviour };
}

async function personalCands(
  deps: RecommendDeps,
  vector: Float32Array,
  filter: ItemFilter,
  want: number,
  diversity: number,
): Promise<Cand[]> {
  const hits = await deps.store.searchItems({
    vector,
    using: 'behaviour',
    filter,
    limit: want * (diversity > 0 ? OVERFETCH : 1),
    withVectors: true,
  });
  const cands = hits.map((h) => ({ ...h, id: h.videoId, vector: h.vectors?.behaviour ?? new Float32Array(vector.length) }));
  const ranked = diversity > 0 ? mmr(cands, want, diversity) : cands.slice(0, want);
  return ranked.map((h) => ({ videoId: h.videoId, score: h.score, payload: h.payload, path: 'personal', behaviour: h.vectors?.behaviour }));
}

/** Recent uploads (within the new-item window) with no event at all, ranked by the user's vector. */
async function newItemCands(deps: RecommendDeps, vector: Float32Array, filter: ItemFilter, slots: number, now: number): Promise<Cand[]> {
  const since = now - deps.policy.newItemWindowH * 3_600_000;
  const f: ItemFilter = { ...filter, uploadedAfter: Math.max(filter.uploadedAfter ?? -Infinity, since) };
  const hits = await deps.store.searchItems({ vector, using: 'behaviour', filter: f, limit: slots * OVERFETCH * 4, withVectors: true });
  const interacted = await deps.popularity.interacted(hits.map((h) => h.videoId));
  return hits
    .filter((_, i) => !interacted[i])
    .slice(0, slots)
    .map((h) => ({ videoId: h.videoId, score: h.score, payload: h.payload, path: 'new-item' as const, behaviour: h.vectors?.behaviour }));
}

/**
 * Decayed-popular and newest ready items alternated. Both come from Redis sorted sets (top N only) and their
 * payloads from the catalog in one MGET; the filter is applied here. Scores: popular = decayed popularity over
 * the most popular item's (1 at the top); fresh = 2^(-age / halfLife).
 */
async function popularFresh(deps: RecommendDeps, filter: ItemFilter, exclude: Set<string>, want: number, now: number): Promise<Cand[]> {
  const pool = want * 2 + exclude.size;
  const [popular, newest] = await Promise.all([deps.popularity.top(pool, now), deps.catalog.newest(pool)]);
  const ids = [...new Set([...popular.map((p) => p.videoId), ...newest])];
  const records = await deps.catalog.getMany(ids);
  const recs = new Map<string, VideoRecord | null>(ids.map((id, i) => [id, records[i] ?? null]));
  const top = popular[0]?.score || 1;
  const halfLifeMs = deps.policy.halfLifeH * 3_600_000;
  const keep = (id: string): ItemPayload | null => {
    const r = recs.get(id);
    if (!r || r.status !== 'ready' || exclude.has(id)) return null;
    const p = payloadOf(r);
    return matches(p, filter) ? p : null;
  };
  const pop: Cand[] = [];
  for (const p of popular) {
    const payload = keep(p.videoId);
    if (payload) pop.push({ videoId: p.videoId, score: p.score / top, payload, path: 'popular' });
  }
  const fresh: Cand[] = [];
  for (const id of newest) {
    const payload = keep(id);
    if (payload) fresh.push({ videoId: id, score: 2 ** (-Math.max(0, now - payload.uploadedAt) / halfLifeMs), payload, path: 'fresh' });
  }
  return interleave(pop, fresh, 0.5, want, (c) => c.videoId);
}

function payloadOf(r: VideoRecord): ItemPayload {
  return {
    videoId: r.videoId,
    title: r.title,
    description: r.description,
    tags: r.tags,
    durationS: r.durationS ?? 0,
    uploadedAt: r.uploadedAt,
    modalities: r.modalities,
    generation: r.generation,
    sha256: r.sha256,
    ...(r.externalId ? { externalId: r.externalId } : {}),
  };
}

/** The store's item filter, applied to a payload in memory (for the lists that do not come from the store). */
export function matches(p: ItemPayload, f: ItemFilter): boolean {
  const tags = new Set(p.tags.map((t) => t.toLowerCase()));
  if (f.tagsAny?.length && !f.tagsAny.some((t) => tags.has(t))) return false;
  if (f.tagsAll?.length && !f.tagsAll.every((t) => tags.has(t))) return false;
  if (f.durationMinS !== undefined && p.durationS < f.durationMinS) return false;
  if (f.durationMaxS !== undefined && p.durationS > f.durationMaxS) return false;
  if (f.uploadedAfter !== undefined && p.uploadedAt < f.uploadedAfter) return false;
  if (f.uploadedBefore !== undefined && p.uploadedAt > f.uploadedBefore) return false;
  if (f.modalities?.length && !f.modalities.every((m) => p.modalities.includes(m))) return false;
  return !f.excludeVideoIds?.includes(p.videoId);
}

/** Each hit's path and its closest watched items; hits from the catalog get their behaviour vector from the store. */
async function withReasons(deps: RecommendDeps, page: Cand[], watched: Watched[]): Promise<RecommendHit[]> {
  const known = watched.filter((w) => w.behaviour);
  const lacking = known.length ? page.filter((c) => !c.behaviour).map((c) => c.videoId) : [];
  const read = new Map((await deps.store.getItems(lacking, true)).flatMap((h) => (h ? [[h.videoId, h.vectors?.behaviour]] : [])));
  const vectors = page.map((c) => c.behaviour ?? read.get(c.videoId));
  return page.map((c, i) => {
    const v = vectors[i];
    const closest = v
      ? known
          .map((w) => ({ videoId: w.videoId, title: w.title, similarity: dot(v, w.behaviour!) }))
          .sort((a, b) => b.similarity - a.similarity)
          .slice(0, REASON_TOP)
      : [];
    return { videoId: c.videoId, score: c.score, payload: c.payload, reason: { path: c.path, closest } };
  });
}
