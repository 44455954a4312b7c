/**
 * Behaviour events: a durable log (a Redis stream, `<prefix>:events`) plus each user's recent sequence, the
 * items they skipped, and item popularity, all written by one Lua script per event so a replayed batch (same
 * event ids) is accepted once and a crash never leaves half an event. At scale the stream would be a Kafka topic
 * (partitioned by user) feeding the same per-user state; the API and the job would not change.
 */
import type { Redis } from 'ioredis';

export type EventType = 'view' | 'like' | 'skip' | 'share';

export interface BehaviourEvent {
  eventId: string;
  userId: string;
  videoId: string;
  type: EventType;
  /** Unix milliseconds. */
  timestamp: number;
  watchSeconds?: number;
  completion?: number;
}

/** Popularity weight of each event type; a skip counts against nothing but is remembered as "seen". */
export const EVENT_WEIGHT: Record<EventType, number> = { view: 1, like: 2, share: 3, skip: 0 };
/** Views that stop this early are treated like skips: the user did not engage. */
export const MIN_ENGAGED_COMPLETION = 0.1;
const DEDUPE_TTL_S = 30 * 86_400;
/** Users remembered per not-yet-ready video, to recompute when it becomes ready; more are dropped (they count at their next event). */
const MAX_PENDING_USERS = 10_000;

/**
 * One event, atomically: refused (2) when its video has no record, a duplicate (0) when its id was seen, else
 * logged, added to the user's sequence or skips (each capped, oldest dropped) and, for a ready video, to
 * popularity; for a video still being ingested its weight and the user wait until it is ready (videoReady).
 */
const APPEND = `
if redis.call('EXISTS', KEYS[6]) == 0 then return 2 end
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000000', '*', 'e', ARGV[2])
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[3], 'GT', ARGV[3], ARGV[4])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[7]) - 1)
else
  redis.call('ZADD', KEYS[4], 'GT', ARGV[3], ARGV[4])
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[8]) - 1)
end
if redis.call('ZSCORE', KEYS[7], ARGV[4]) then
  if tonumber(ARGV[6]) > 0 then redis.call('ZINCRBY', KEYS[5], ARGV[6], ARGV[4]) end
else
  if tonumber(ARGV[6]) > 0 then redis.call('ZINCRBY', KEYS[8], ARGV[6], ARGV[4]) end
  if ARGV[5] == '1' and redis.call('SCARD', KEYS[9]) < tonumber(ARGV[10]) then redis.call('SADD', KEYS[9], ARGV[9]) end
end
return 1`;

/** A video became ready: its waiting popularity is counted, and the users who engaged with it meanwhile are returned. */
const READY = `
local w = redis.call('ZSCORE', KEYS[1], ARGV[1])
if w then
  redis.call('ZINCRBY', KEYS[2], w, ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
local users = redis.call('SMEMBERS', KEYS[3])
redis.call('DEL', KEYS[3])
return users`;

/** Where the video records live (src/catalog): an event is taken only for a video that has one. */
export interface VideoKeys {
  recordKey(videoId: string): string;
  readonly readyKey: string;
}

/** How much per-user state is kept (README "Limits"): each list drops its oldest entries past its cap. */
export interface EventLimits {
  /** Newest engaged items kept per user (the user tower reads the newest of them). @defaultValue 200 */
  sequenceMax: number;
  /** Newest skipped items kept per user (excluded from recommendations). @defaultValue 1000 */
  skipsMax: number;
}

/** What became of each event of a batch, in order. */
export type AppendOutcome = 'accepted' | 'duplicate' | 'unknown-video';

export function engaged(e: BehaviourEvent): boolean {
  if (e.type === 'skip') return false;
  return !(e.type === 'view' && e.completion !== undefined && e.completion < MIN_ENGAGED_COMPLETION);
}

export class EventLog {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #videos: VideoKeys;
  readonly limits: EventLimits;

  constructor(redis: Redis, prefix: string, videos: VideoKeys, limits: EventLimits = { sequenceMax: 200, skipsMax: 1000 }) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#videos = videos;
    this.limits = limits;
  }

  seqKey(userId: string): string {
    return `${this.#prefix}:user:${userId}:seq`;
  }
  /** A sorted set by time, capped (the first version's unbounded set, `:skipped`, is no longer read). */
  skipsKey(userId: string): string {
    return `${this.#prefix}:user:${userId}:skips`;
  }
  get popularKey(): string {
    return `${this.#prefix}:popular`;
  }
  get streamKey(): string {
    return `${this.#prefix}:events`;
  }
  get #pendingPopularKey(): string {
    return `${this.#prefix}:popular:pending`;
  }
  #pendingUsersKey(videoId: string): string {
    return `${this.#prefix}:video:${videoId}:pending-users`;
  }

  /** Every user with a stored sequence (a SCAN: a backfill recomputes their vectors in the new generation). */
  async userIds(): Promise<string[]> {
    const head = `${this.#prefix}:user:`;
    const out = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await this.#redis.scan(cursor, 'MATCH', `${head}*:seq`, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) out.add(k.slice(head.length, -':seq'.length));
    } while (cursor !== '0');
    return [...out].sort();
  }

  /** Appends events not seen before (by eventId) whose video exists; returns each one's outcome and the users whose state changed. */
  async append(events: BehaviourEvent[]): Promise<{ outcomes: AppendOutcome[]; users: string[] }> {
    const pipe = this.#redis.pipeline();
    for (const e of events) {
      pipe.eval(
        APPEND,
        9,
        `${this.#prefix}:event:${e.eventId}`,
        this.streamKey,
        this.seqKey(e.userId),
        this.skipsKey(e.userId),
        this.popularKey,
        this.#videos.recordKey(e.videoId),
        this.#videos.readyKey,
        this.#pendingPopularKey,
        this.#pendingUsersKey(e.videoId),
        DEDUPE_TTL_S,
        JSON.stringify(e),
        e.timestamp,
        e.videoId,
        engaged(e) ? '1' : '0',
        engaged(e) ? EVENT_WEIGHT[e.type] : 0,
        this.limits.sequenceMax,
        this.limits.skipsMax,
        e.userId,
        MAX_PENDING_USERS,
      );
    }
    const res = (await pipe.exec()) ?? [];
    const users = new Set<string>();
    const outcomes = res.map(([err, v], i): AppendOutcome => {
      if (err) throw err;
      if (v === 2) return 'unknown-video';
      if (v !== 1) return 'duplicate';
      users.add(events[i]!.userId);
      return 'accepted';
    });
    return { outcomes, users: [...users] };
  }

  /**
   * A video became ready: the popularity its events earned while it was ingested is counted now, and the users who
   * engaged with it meanwhile are returned, for their vectors to be recomputed (their events skipped it until now).
   */
  async videoReady(videoId: string): Promise<string[]> {
    return (await this.#redis.eval(
      READY,
      3,
      this.#pendingPopularKey,
      this.popularKey,
      this.#pendingUsersKey(videoId),
      videoId,
    )) as string[];
  }

  /** The user's newest engaged items, oldest first, with their timestamps (ms). */
  async recent(userId: string, n: number): Promise<Array<{ videoId: string; timestamp: number }>> {
    const raw = await this.#redis.zrange(this.seqKey(userId), String(-n), '-1', 'WITHSCORES');
    const out: Array<{ videoId: string; timestamp: number }> = [];
    for (let i = 0; i < raw.length; i += 2) out.push({ videoId: raw[i]!, timestamp: Number(raw[i + 1]) });
    return out;
  }

  /**
   * Everything the user has engaged with or skipped, excluded from their recommendations: at most
   * sequenceMax + skipsMax ids, whatever the user has sent.
   */
  async seen(userId: string): Promise<string[]> {
    const [engagedIds, skipped] = await Promise.all([
      this.#redis.zrange(this.seqKey(userId), '0', '-1'),
      this.#redis.zrange(this.skipsKey(userId), '0', '-1'),
    ]);
    return [...new Set([...engagedIds, ...skipped])];
  }

  /**
   * A page of the durable log, oldest first: up to `count` events after stream id `after` ('-' for the start), and
   * the id to pass next (null at the end). The log keeps about the newest million events (XADD MAXLEN).
   */
  async page(after: string, count: number): Promise<{ events: BehaviourEvent[]; next: string | null }> {
    const start = after === '-' ? '-' : `(${after}`;
    const rows = await this.#redis.xrange(this.streamKey, start, '+', 'COUNT', count);
    const events = rows.map(([, fields]) => JSON.parse(fields[fields.indexOf('e') + 1]!) as BehaviourEvent);
    return { events, next: rows.length === count ? rows[rows.length - 1]![0] : null };
  }

  async popular(n: number): Promise<string[]> {
    return this.#redis.zrevrange(this.popularKey, '0', String(n - 1));
  }
}
