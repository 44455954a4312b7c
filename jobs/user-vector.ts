/**
 * The user-vector job: reads a user's newest engaged items, their content vectors from the store, and runs the
 * user tower; the result is upserted into the `users` collection, and the newest of those items (id, title,
 * behaviour vector) are written beside it as the user's profile (src/recommend/profiles.ts), so a recommendation
 * reads them in one value instead of from the store. Enqueued debounced per user (the policy's
 * `debounceMs`, BullMQ deduplication), so a burst of events makes one recomputation, and it reads state when it
 * runs, so it is idempotent and always reflects the newest events.
 */
import type { Job } from 'bullmq';
import type { Encoders } from '../src/models/types.ts';
import type { VectorStore } from '../src/store/types.ts';
import type { EventLog } from '../src/users/events.ts';
import type { Logger } from '../src/log.ts';
import { PROFILE_ITEMS, type UserProfiles } from '../src/recommend/profiles.ts';
import type { WatchedItem } from '../src/recommend/watched-cache.ts';

export interface UserVectorData {
  userId: string;
}

export interface UserVectorResult {
  userId: string;
  items: number;
  skipped?: 'no-history' | 'no-user-tower';
}

export interface UserVectorDeps {
  encoders: Encoders;
  store: VectorStore;
  events: EventLog;
  profiles: UserProfiles;
  log: Logger;
}

export function makeUserVectorProcessor(deps: UserVectorDeps) {
  return async (job: Job<UserVectorData>): Promise<UserVectorResult> => {
    const { userId } = job.data;
    if (!deps.encoders.has('user')) return { userId, items: 0, skipped: 'no-user-tower' };
    const maxItems = deps.encoders.generation.preprocessing.user?.max_items ?? 50;
    const recent = await deps.events.recent(userId, maxItems);
    const now = Date.now();
    const items: Float32Array[] = [];
    const ageSeconds: number[] = [];
    const watched: WatchedItem[] = [];
    let newest = 0;
    for (const r of recent) {
      const item = await deps.store.getItem(r.videoId, true);
      const v = item?.vectors?.fused;
      if (!v) continue; // an event for a video the store does not have (deleted, or not ingested yet)
      items.push(v);
      watched.push({ videoId: item.videoId, title: item.payload.title, behaviour: item.vectors?.behaviour });
      ageSeconds.push(Math.max(0, (now - r.timestamp) / 1000));
      newest = Math.max(newest, r.timestamp);
    }
    if (items.length === 0) return { userId, items: 0, skipped: 'no-history' };
    const [vector] = await deps.encoders.encodeUsers([{ items, ageSeconds }]);
    const generation = deps.encoders.generation.name;
    await deps.store.upsertUsers([{ userId, vector: vector!, updatedAt: newest, events: items.length, generation }]);
    // After the vector: a profile never describes a newer history than the vector stored beside it.
    await deps.profiles.put(userId, { generation, updatedAt: newest, watched: watched.slice(-PROFILE_ITEMS) });
    return { userId, items: items.length };
  };
}
