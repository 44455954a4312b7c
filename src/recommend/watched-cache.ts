/**
 * Watched items as a recommendation needs them (id, title, behaviour vector), kept in process for a short time:
 * a list reads a user's 20 newest watched items, and reading them from the store one by one was most of a
 * request's time (bench/recommend.ts). Entries live `ttlMs` (a deleted or re-ingested item is seen within it)
 * and the oldest go past `max` entries (a Map keeps insertion order).
 */
import type { ItemHit } from '../store/types.ts';

export interface WatchedItem {
  videoId: string;
  title: string;
  behaviour: Float32Array | undefined;
}

export class WatchedCache {
  readonly #entries = new Map<string, { item: WatchedItem | null; at: number }>();
  readonly #ttlMs: number;
  readonly #max: number;

  /** @param ttlMs @defaultValue 60 s  @param max @defaultValue 20000 entries (about 20 MB at 256 dims) */
  constructor(ttlMs = 60_000, max = 20_000) {
    this.#ttlMs = ttlMs;
    this.#max = max;
  }

  /** The items, from the cache where fresh, else from `load` (in parallel); null for an item the store lacks. */
  async get(videoIds: string[], load: (videoId: string) => Promise<ItemHit | null>, now = Date.now()): Promise<Array<WatchedItem | null>> {
    return Promise.all(
      videoIds.map(async (id) => {
        const hit = this.#entries.get(id);
        if (hit && now - hit.at < this.#ttlMs) return hit.item;
        const i = await load(id);
        const item = i ? { videoId: i.videoId, title: i.payload.title, behaviour: i.vectors?.behaviour } : null;
        this.#entries.delete(id);
        this.#entries.set(id, { item, at: now });
        if (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
        return item;
      }),
    );
  }
}
