/**
 * What a personal list needs beside the user's vector, kept in one Redis value per user: the user's newest watched
 * items (id, title, behaviour vector), written by the user-vector job (jobs/user-vector.ts) from the items it has
 * just read for the user tower. A request then reads this one value instead of the watched items from the vector
 * store, which was most of a list's time (bench/recommend.ts: 20 scattered rows with their vectors, 120-370 ms on
 * the embedded store under load). The profile is as fresh as the user's vector (both move at the job's debounce);
 * the seen and skipped items a list excludes are read live from the event log.
 *
 * Layout (binary, one GET): u32 LE length of a JSON header, the header ({generation, updatedAt, dim, watched:
 * [{videoId, title}]}), then dim float32 LE per watched item that has a behaviour vector (`hasVector` in the
 * header). 20 items at 256 dims are about 21 KB; the value expires `ttlH` after its last write, so only users
 * active within it hold one (an expired user is served from the store, as before the profile).
 */
import type { Redis } from 'ioredis';
import type { WatchedItem } from './watched-cache.ts';

/** Watched items a profile keeps, newest: the centroid and the reasons use these. */
export const PROFILE_ITEMS = 20;

export interface UserProfile {
  /** The generation whose behaviour vectors these are (a profile of another generation is not used). */
  generation: string;
  /** Unix ms of the newest event folded in. */
  updatedAt: number;
  /** Oldest first, at most PROFILE_ITEMS. */
  watched: WatchedItem[];
}

interface Header {
  generation: string;
  updatedAt: number;
  dim: number;
  watched: Array<{ videoId: string; title: string; hasVector: boolean }>;
}

export class UserProfiles {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlS: number;

  /** @param ttlH hours a profile lives after its last write (MONTAGE_RECOMMEND_PROFILE_TTL_H) */
  constructor(redis: Redis, prefix: string, opts: { ttlH: number }) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#ttlS = Math.max(1, Math.round(opts.ttlH * 3600));
  }

  key(userId: string): string {
    return `${this.#prefix}:user:${userId}:profile`;
  }

  async put(userId: string, profile: UserProfile): Promise<void> {
    await this.#redis.set(this.key(userId), encodeProfile(profile), 'EX', this.#ttlS);
  }

  async get(userId: string): Promise<UserProfile | null> {
    const buf = await this.#redis.getBuffer(this.key(userId));
    return buf ? decodeProfile(buf) : null;
  }
}

export function encodeProfile(p: UserProfile): Buffer {
  const watched = p.watched.slice(-PROFILE_ITEMS);
  const withVec = watched.filter((w) => w.behaviour);
  const dim = withVec[0]?.behaviour!.length ?? 0;
  const header: Header = {
    generation: p.generation,
    updatedAt: p.updatedAt,
    dim,
    watched: watched.map((w) => ({ videoId: w.videoId, title: w.title, hasVector: !!w.behaviour && w.behaviour.length === dim })),
  };
  const json = Buffer.from(JSON.stringify(header));
  const vectors = header.watched.filter((w) => w.hasVector).length;
  const out = Buffer.alloc(4 + json.length + vectors * dim * 4);
  out.writeUInt32LE(json.length, 0);
  json.copy(out, 4);
  let off = 4 + json.length;
  watched.forEach((w, i) => {
    if (!header.watched[i]!.hasVector) return;
    for (const x of w.behaviour!) off = out.writeFloatLE(x, off);
  });
  return out;
}

export function decodeProfile(buf: Buffer): UserProfile {
  const len = buf.readUInt32LE(0);
  const header = JSON.parse(buf.subarray(4, 4 + len).toString('utf8')) as Header;
  let off = 4 + len;
  const watched = header.watched.map((w): WatchedItem => {
    if (!w.hasVector) return { videoId: w.videoId, title: w.title, behaviour: undefined };
    const v = new Float32Array(header.dim);
    for (let j = 0; j < header.dim; j++, off += 4) v[j] = buf.readFloatLE(off);
    return { videoId: w.videoId, title: w.title, behaviour: v };
  });
  return { generation: header.generation, updatedAt: header.updatedAt, watched };
}
