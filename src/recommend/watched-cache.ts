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
  readonly #scope: () => string;

  /**
   * @param ttlMs @defaultValue 60 s  @param max @defaultValue 20000 entries (about 20 MB at 256 dims)
   * @param scope names the generation the vectors belong to (a process serving two keeps them apart) @defaultValue one scope
   */
  constructor(ttlMs = 60_000, max = 20_000, scope: () => string = () => '') {
    this.#ttlMs = ttlMs;
    this.#max = max;
    this.#scope = scope;
  }

  /** The items, from the cache where fresh, else from `load` (one call for all the others); null for an item the store lacks. */
  async get(
    videoIds: string[],
    load: (videoIds: string[]) => Promise<Array<ItemHit | null>>,
    now = Date.now(),
  ): Promise<Array<WatchedItem | null>> {
    const scope = this.#scope();
    const key = (id: string) => `${scope}\u0000${id}`;
    const fresh = (id: string) => {
      const e = this.#entries.get(key(id));
      return e && now - e.at < this.#ttlMs ? e : undefined;
    };
    const missing = [...new Set(videoIds.filter((id) => !fresh(id)))];
    const loaded = missing.length ? await load(missing) : [];
    missing.forEach((id, i) => {
      const h = loaded[i];
      this.#entries.delete(key(id));
      this.#entries.set(key(id), {
        item: h ? { videoId: h.videoId, title: h.payload.title, behaviour: h.vectors?.behaviour } : null,
        at: now,
      });
      if (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
    });
    return videoIds.map((id) => this.#entries.get(key(id))?.item ?? null);
  }
}
