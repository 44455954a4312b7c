/**
 * Recommendations: the user's vector against every item's `behaviour` vector (the item's content projected into
 * the user space, so an item nobody has watched is a candidate like any other), minus what the user has seen or
 * skipped. Users with no vector yet get the popular-and-fresh fallback.
 */
import type { Catalog } from '../catalog/index.ts';
import type { VectorStore } from '../store/types.ts';
import type { EventLog } from '../users/events.ts';
import type { SearchHit } from '../search/service.ts';

export interface RecommendDeps {
  store: VectorStore;
  events: EventLog;
  catalog: Catalog;
  generation: string;
}

export interface Recommendations {
  source: 'personal' | 'popular-fresh';
  hits: SearchHit[];
}

export async function recommend(deps: RecommendDeps, userId: string, limit: number, offset = 0): Promise<Recommendations> {
  // Bounded (the event log caps it), and only the ready ones can be hits: the store's filter gets those alone.
  const seen = await deps.catalog.readyAmong(await deps.events.seen(userId));
  const user = await deps.store.getUser(userId);
  if (user && user.generation === deps.generation) {
    const hits = await deps.store.searchItems({
      vector: user.vector,
      using: 'behaviour',
      limit: offset + limit,
      filter: seen.length ? { excludeVideoIds: seen } : {},
    });
    if (hits.length > 0) return { source: 'personal', hits: hits.slice(offset) };
  }
  return { source: 'popular-fresh', hits: await popularFresh(deps, new Set(seen), offset + limit).then((h) => h.slice(offset)) };
}

/** Alternates the most-engaged and the newest ready items, skipping repeats and what the user has seen. */
async function popularFresh(deps: RecommendDeps, seen: Set<string>, n: number): Promise<SearchHit[]> {
  const pool = n * 2 + seen.size;
  const [popular, newest] = await Promise.all([deps.events.popular(pool), deps.catalog.newest(pool)]);
  const out: SearchHit[] = [];
  const taken = new Set<string>();
  for (let i = 0; out.length < n && (i < popular.length || i < newest.length); i++) {
    for (const [list, rank] of [
      [popular, i],
      [newest, i],
    ] as const) {
      const id = list[rank];
      if (!id || taken.has(id) || seen.has(id) || out.length >= n) continue;
      taken.add(id);
      const item = await deps.store.getItem(id);
      // Score: a rank-based stand-in (no similarity exists here), decreasing down the list.
      if (item) out.push({ videoId: id, score: 1 / (1 + out.length), payload: item.payload });
    }
  }
  return out;
}
